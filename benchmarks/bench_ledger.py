"""The ledger on DuckDB vs the code before it (commit d0ad439), side by side on a 10M-row ledger.

One synthetic ledger (bench_stats.make_ledger: 50 zstd Parquet parts x 200k rows = 10M rows;
urls on 5k hosts, captions, reasons of four stages, image sizes, ~5M distinct sha256, MetaCLIP
entry ids over 500k entries, a CLIP score and its cut, a language) is written once under
benchmarks/out/. The code before this change is checked out with `git archive d0ad439` into a
temporary folder; each contender runs as a fresh child process of this interpreter (process start
included) with PYTHONPATH on its own tree, peak RSS from wait4 (bench_subset.measure_rss):

1. re-cut: `python -m curate.subset cut LEDGER --keep_fraction clip_score=0.15 --where
   "language in ('en', 'de') and width >= 256" --to X.npy` (written so both dialects read it);
   the two .npy files must be byte for byte equal;
2. statistics: `python -m curate.stats LEDGER` (every table printed); the two printouts must be
   equal. The old code also with `--workers 2` (its fastest setting on two cores).

Contenders alternate, best of `--repeat` re-cuts (default 3) and `--repeat_stats` statistics runs
(default 1) each, peak RSS the highest. Run it under `nice -n 10` on a shared machine:
python benchmarks/bench_ledger.py [--rows 200000 --parts 50] [--repeat 3] [--repeat_stats 1] [--skip stats]
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile

import bench_stats
from bench_subset import HERE, ROOT, measure_rss

BASELINE = "d0ad439"
CUT = ["--keep_fraction", "clip_score=0.15", "--where", "language in ('en', 'de') and width >= 256"]


def make_ledger(parts: int, rows: int) -> str:
    folder = os.path.join(HERE, "out", f"ledger-{parts}x{rows}")
    marker = os.path.join(folder, "made")
    if not os.path.exists(marker):
        shutil.rmtree(folder, ignore_errors=True)
        bench_stats.make_ledger(folder, parts, rows)
        open(marker, "w").close()
    return folder


def baseline_tree(folder: str) -> str:
    """The code of BASELINE, as a plain folder (no worktree, nothing changed in this checkout)."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", BASELINE], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def contenders(base: str) -> dict[str, str]:
    return {"before (d0ad439)": base, "DuckDB (this tree)": ROOT}


def best(runs: list[dict]) -> dict:
    return {"wall_s": round(min(r["wall_s"] for r in runs), 2), "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs))}


def bench_cut(ledger: str, base: str, work: str, repeat: int) -> dict:
    runs: dict[str, list] = {name: [] for name in contenders(base)}
    for _ in range(repeat):
        for name, tree in contenders(base).items():
            to = os.path.join(work, f"cut-{len(runs[name])}-{'new' if tree == ROOT else 'old'}.npy")
            runs[name].append({**measure_rss([sys.executable, "-m", "curate.subset", "cut", ledger, *CUT, "--to", to],
                                             tree), "npy": to})
    old, new = (runs[name][-1]["npy"] for name in runs)
    assert filecmp.cmp(old, new, shallow=False), "the two cuts differ"
    result = {name: best(r) for name, r in runs.items()}
    result["uids"] = json.load(open(new[:-4] + ".json"))["uids"]
    return result


def bench_stats_cli(ledger: str, base: str, repeat: int) -> dict:
    cases = {"before (d0ad439)": (base, []), "before (d0ad439), --workers 2": (base, ["--workers", "2"]),
             "DuckDB (this tree)": (ROOT, [])}
    runs: dict[str, list] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, (tree, flags) in cases.items():
            runs[name].append(measure_rss([sys.executable, "-m", "curate.stats", ledger, *flags], tree))
    printed = {name: r[-1]["stdout"] for name, r in runs.items()}
    assert len(set(printed.values())) == 1, "the statistics differ"
    return {name: best(r) for name, r in runs.items()}


def ratios(result: dict, new: str = "DuckDB (this tree)") -> dict:
    out = {}
    for name, figures in result.items():
        if isinstance(figures, dict) and name != new:
            out[f"speed vs {name}"] = round(figures["wall_s"] / result[new]["wall_s"], 2)
            out[f"peak RSS vs {name}"] = round(result[new]["peak_rss_mb"] / figures["peak_rss_mb"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=int, default=50)
    parser.add_argument("--rows", type=int, default=200_000, help="rows per part")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each re-cut (the best counts)")
    parser.add_argument("--repeat_stats", type=int, default=1, help="runs of each statistics contender")
    parser.add_argument("--skip", choices=["cut", "stats"], default=None)
    args = parser.parse_args()
    ledger = make_ledger(args.parts, args.rows)
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as work:
        base = os.path.join(work, "base")
        os.makedirs(base)
        baseline_tree(base)
        print(f"ledger: {args.parts} parts x {args.rows:,} rows = {args.parts * args.rows:,} rows", flush=True)
        if args.skip != "cut":
            cut = bench_cut(ledger, base, work, args.repeat)
            print(json.dumps({"recut": {**cut, **ratios(cut)}}, indent=1), flush=True)
        if args.skip != "stats":
            stats = bench_stats_cli(ledger, base, args.repeat_stats)
            print(json.dumps({"stats": {**stats, **ratios(stats)}}, indent=1), flush=True)


if __name__ == "__main__":
    main()
