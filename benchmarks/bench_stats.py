"""curate.stats over a large ledger: time and peak memory of `collect` vs loading it in pandas.

A synthetic ledger (default 12 parts x 200k rows: urls on 5k hosts, captions, reasons of
four stages, image sizes, sha256, MetaCLIP entry ids over 500k entries, a CLIP score and its
cut, a language) is written once under benchmarks/out/. Each measurement runs in a fresh
process (peak RSS from getrusage): the baseline reads the columns the statistics need into one
pandas DataFrame (what a notebook would do first), without computing anything; `collect`
computes every statistic with DuckDB (1 and 2 threads). The same statistics by the code before
DuckDB, side by side, on 10M rows: bench_ledger.py.

Run: python benchmarks/bench_stats.py [--parts 12] [--rows 200000]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out", "stats_ledger")
# the columns the statistics read (every one of this ledger's but uid)
STATS_COLUMNS = ["url", "caption", "status", "reason", "width", "height", "sha256", "entry_ids", "download_attempts",
                 "clip_score", "clip_threshold", "language"]


def make_ledger(folder: str, parts: int, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, "ledger"), exist_ok=True)
    words = np.array("a dog cat on the red blue house tree in of with man woman car sky".split())
    reasons_total: dict[str, int] = {}
    for p in range(parts):
        n = rows
        stage = rng.choice(4, n, p=[0.35, 0.25, 0.15, 0.25])  # metaclip, download, score, kept
        reason = np.array(["metaclip:balanced_out", "download:http_404", "score:below_threshold", None],
                          dtype=object)[stage]
        lengths = rng.integers(0, 6, n)
        ids = pa.ListArray.from_arrays(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
                                       pa.array(rng.zipf(1.3, lengths.sum()) % 500_000, pa.int32()))
        caption = [" ".join(words[rng.integers(0, len(words), k)]) for k in rng.integers(2, 20, n)]
        scored = stage >= 2
        score = np.where(scored, rng.normal(0.25, 0.06, n), np.nan).astype(np.float32)
        table = pa.table({
            "uid": [f"{p:04x}{i:028x}" for i in range(n)],
            "url": [f"http://host{h}.example.com/{i}.jpg" for i, h in enumerate(rng.integers(0, 5000, n))],
            "caption": caption,
            "status": np.where(stage == 3, "kept", "dropped"),
            "reason": pa.array(reason, pa.string()),
            "width": pa.array(np.where(stage >= 2, rng.integers(64, 2048, n), 0), pa.int64()).cast(pa.int64()),
            "height": pa.array(np.where(stage >= 2, rng.integers(64, 2048, n), 0), pa.int64()),
            "sha256": [f"{v:064x}" for v in rng.integers(0, rows * parts // 2, n)],
            "entry_ids": ids,
            "download_attempts": pa.array(np.where(stage >= 1, 1, 0), pa.int32()),
            "clip_score": pa.array(score, pa.float32(), from_pandas=True),
            "clip_threshold": pa.array(np.where(scored, 0.28, np.nan), pa.float32(), from_pandas=True),
            "language": rng.choice(["en", "de", "fr", "es", "ja"], n),
        })
        pq.write_table(table, os.path.join(folder, "ledger", f"part-00000-{p:05d}.parquet"), compression="zstd")
        for r, c in zip(*np.unique(reason[reason != None].astype(str), return_counts=True)):  # noqa: E711
            reasons_total[r] = reasons_total.get(r, 0) + int(c)
    with open(os.path.join(folder, "stats.json"), "w") as f:
        json.dump({"pipeline": "synthetic", "inputs": parts * rows, "dropped_by_reason": reasons_total,
                   "shards": [], "stages": {"MetaCLIP": {"metadata_entries": 500_000, "t": 2000}}}, f)


def measure(mode: str) -> dict:
    """Run in this process: time one mode and report peak RSS."""
    started = time.perf_counter()
    if mode == "pandas":
        import pandas as pd

        frame = pd.read_parquet(os.path.join(OUT, "ledger"), columns=STATS_COLUMNS)
        rows = len(frame)
    else:
        from curate.stats import collect, tables

        rs = collect(OUT, workers=int(mode.split("=")[1]), metadata="default")
        tables(rs)
        rows = rs.funnel.inputs
    seconds = time.perf_counter() - started
    return {"mode": mode, "rows": rows, "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", type=int, default=12)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    marker = os.path.join(OUT, f"made-{args.parts}x{args.rows}")
    if not os.path.exists(marker):
        import shutil

        shutil.rmtree(OUT, ignore_errors=True)
        make_ledger(OUT, args.parts, args.rows)
        open(marker, "w").close()
    results = {}
    for mode in ("pandas", "collect workers=1", "collect workers=2"):
        out = subprocess.run([sys.executable, __file__, "--measure", mode.split()[-1] if "collect" in mode
                              else mode], capture_output=True, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results["pandas"]
    print(f"ledger: {args.parts} parts x {args.rows:,} rows = {args.parts * args.rows:,} rows")
    for mode, r in results.items():
        print(f"{mode:<20} {r['seconds']:7.2f} s  {r['rows'] / r['seconds']:>12,.0f} rows/s  "
              f"peak RSS {r['peak_rss_mb']:7.0f} MB  time x{r['seconds'] / base['seconds']:.2f}  "
              f"memory x{r['peak_rss_mb'] / base['peak_rss_mb']:.2f} (vs pandas load)")


if __name__ == "__main__":
    main()
