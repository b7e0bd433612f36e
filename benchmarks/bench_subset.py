"""Subsets: re-cut of a large synthetic ledger, and resharding, each against a plain baseline.

1. Re-cut. A synthetic ledger (default 10M rows in parts of 100k, like a run's: uid, url,
   caption, status, reason, language, dfn_score, clip_score, width, height) is written once
   under benchmarks/out/. `python -m curate.subset cut --keep_fraction dfn_score=0.15
   --language en` (DuckDB: the exact k-th score in two bounded passes, a counting pass, the
   sorted uids streamed into the .npy) runs in a fresh process; the same cut by the code
   before DuckDB is in bench_ledger.py; the baseline, also a fresh process, only loads
   the same columns into one pandas DataFrame (what a notebook does before any cut), then
   computes the same cut with pandas (sort for the k-th score) and the sorted uids as strings.
   Peak RSS from wait4; both selections are checked equal in size.
2. Reshard. Synthetic DataComp-style shards (random image bytes, json with a uid) and a
   subset of half their uids: `python -m curate.run --pipeline reshard` (FnApiRunner, one
   process, start-up included) vs plain Python `tarfile` copying of the kept members into new
   tars (read every tar, write the kept members: the same bytes moved, nothing else).

Run: python benchmarks/bench_subset.py [--rows 10000000] [--shards 10 --per_shard 1000]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out", "subset")
PART_ROWS = 100_000
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_uids(rng, n: int) -> pa.Array:
    """n random 32-hex uids as one Arrow string array, built from buffers (no Python strings)."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, 0::2] = HEX[raw >> 4]
    chars[:, 1::2] = HEX[raw & 15]
    offsets = np.arange(0, 32 * (n + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))


def make_ledger(folder: str, rows: int, seed: int = 0) -> None:
    done = os.path.join(folder, "_done")
    if os.path.exists(done) and open(done).read() == str(rows):
        return
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(os.path.join(folder, "ledger"))
    rng = np.random.default_rng(seed)
    captions = pa.array([f"a photo of a {w} on the {v} number {i}" for i, (w, v) in enumerate(
        zip(rng.choice(["dog", "cat", "car", "tree", "house"], 1000), rng.choice(["table", "road", "hill"], 1000)))])
    for part, start in enumerate(range(0, rows, PART_ROWS)):
        n = min(PART_ROWS, rows - start)
        fate = rng.choice(4, n, p=[0.3, 0.2, 0.3, 0.2])  # kept, download, score cut, filter
        reason = pa.array(np.array([None, "download:http_404", "score:below_threshold", "filter:language"],
                                   dtype=object)[fate])
        scored = fate % 2 == 0
        dfn = rng.normal(0.2, 0.08, n).astype(np.float32)
        clip = rng.normal(0.28, 0.05, n).astype(np.float32)
        table = pa.table({
            "uid": hex_uids(rng, n),
            "url": pa.array([f"http://host{i % 5000}.example.com/{start + i}.jpg" for i in range(n)]),
            "caption": captions.take(pa.array(rng.integers(0, 1000, n))),
            "status": pa.array(np.where(fate == 0, "kept", "dropped")),
            "reason": reason,
            "language": pa.array(rng.choice(["en", "de", "fr", "es"], n, p=[0.6, 0.15, 0.15, 0.1])),
            "dfn_score": pa.array(dfn, mask=~scored),
            "clip_score": pa.array(clip, mask=~scored),
            "width": pa.array(rng.integers(64, 2048, n)),
            "height": pa.array(rng.integers(64, 2048, n)),
        })
        pq.write_table(table, os.path.join(folder, "ledger", f"part-00000-{part:05d}.parquet"), compression="zstd")
    with open(done, "w") as f:
        f.write(str(rows))




def measure_rss(args: list[str], root: str = ROOT) -> dict:
    """Run a child in the source tree `root` (this one by default): wall time, peak RSS (MB,
    from wait4) and its stdout."""
    started = time.time()
    with tempfile.TemporaryFile() as err_file:
        child = subprocess.Popen(args, cwd=root, stdout=subprocess.PIPE, stderr=err_file,
                                 env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": root})
        out = child.stdout.read()  # stderr goes to a file: no pipe can fill while we wait
        _, status, usage = os.wait4(child.pid, 0)
        err_file.seek(0)
        err = err_file.read()
    wall = time.time() - started
    if status != 0:
        raise SystemExit(f"{args[:4]} failed:\n{err.decode()[-3000:]}")
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": out.decode()}


PANDAS_CUT = r"""
import sys, glob, time, json
import numpy as np, pandas as pd
t = time.time()
df = pd.read_parquet(sys.argv[1], columns=["uid", "status", "reason", "language", "dfn_score", "clip_score"])
loaded = time.time() - t
if sys.argv[2] == "cut":
    pool = df.dfn_score.notna() & df.clip_score.notna()
    scores = np.sort(df.dfn_score[pool].to_numpy(np.float32))[::-1]
    k = min(len(scores), int(np.floor(0.15 * len(scores) + 0.5)))
    threshold = scores[k - 1]
    keep = (pool & (df.dfn_score >= threshold) & (df.language == "en")
            & (df.status.eq("kept") | df.reason.isin(["score:below_threshold", "score:not_target_cluster"])))
    uids = np.sort(df.uid[keep].to_numpy().astype("U32"))
    print(json.dumps({"uids": len(uids), "loaded_s": loaded}))
else:
    print(json.dumps({"rows": len(df), "loaded_s": loaded}))
"""


def bench_cut(rows: int) -> dict:
    folder = os.path.join(OUT, f"ledger-{rows}")
    t = time.time()
    make_ledger(folder, rows)
    print(f"ledger of {rows:,} rows ready in {time.time() - t:.0f} s", flush=True)
    ledger = os.path.join(folder, "ledger")
    ours = measure_rss([sys.executable, "-m", "curate.subset", "cut", folder, "--keep_fraction", "dfn_score=0.15",
                        "--language", "en", "--to", os.path.join(OUT, "cut.npy")])
    summary = json.load(open(os.path.join(OUT, "cut.json")))
    load = measure_rss([sys.executable, "-c", PANDAS_CUT, ledger, "load"])
    cut = measure_rss([sys.executable, "-c", PANDAS_CUT, ledger, "cut"])
    assert json.loads(cut["stdout"])["uids"] == summary["uids"], (cut["stdout"], summary["uids"])
    result = {
        "rows": rows, "selected_uids": summary["uids"],
        "curate_cut": {"wall_s": round(ours["wall_s"], 2), "rows_per_s": round(rows / ours["wall_s"]),
                       "peak_rss_mb": round(ours["peak_rss_mb"])},
        "pandas_load": {"wall_s": round(load["wall_s"], 2), "peak_rss_mb": round(load["peak_rss_mb"])},
        "pandas_load_and_cut": {"wall_s": round(cut["wall_s"], 2), "rows_per_s": round(rows / cut["wall_s"]),
                                "peak_rss_mb": round(cut["peak_rss_mb"])},
    }
    result["rss_ratio_vs_pandas_load"] = round(load["peak_rss_mb"] / ours["peak_rss_mb"], 2)
    result["speed_ratio_vs_pandas_load_and_cut"] = round(cut["wall_s"] / ours["wall_s"], 2)
    return result


def make_shards(folder: str, shards: int, per_shard: int, image_kb: int, seed: int = 1) -> list[str]:
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    rng = np.random.default_rng(seed)
    uids = []
    for s in range(shards):
        with tarfile.open(os.path.join(folder, f"{s:08d}.tar"), "w") as tar:
            for i in range(per_shard):
                uid = bytes(rng.integers(0, 256, 16, dtype=np.uint8)).hex()
                uids.append(uid)
                key = f"{s:04d}{i:05d}"
                image = b"\xff\xd8\xff" + rng.bytes(image_kb * 1024 - 3)
                meta = {"uid": uid, "url": f"http://example.com/{uid}.jpg", "caption": f"a photo {i}", "key": key}
                members = (("jpg", image), ("txt", meta["caption"].encode()), ("json", json.dumps(meta).encode()))
                for ext, data in members:
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return uids


PLAIN_COPY = r"""
import sys, os, glob, json, tarfile
import numpy as np
src, dst, subset = sys.argv[1:4]
keep = set(f"{int(a):016x}{int(b):016x}" for a, b in np.load(subset))
os.makedirs(dst, exist_ok=True)
out, n, count = None, 0, 0
for path in sorted(glob.glob(os.path.join(src, "*.tar"))):
    with tarfile.open(path, "r|") as tar:
        group, key = [], None
        def flush(group):
            global out, n, count
            meta = next((json.loads(d) for m, d in group if m.name.endswith(".json")), {})
            if meta.get("uid") in keep:
                if out is None or n == 10000:
                    out = tarfile.open(os.path.join(dst, f"{count // 10000:08d}.tar"), "w"); n = 0
                for m, d in group:
                    import io; out.addfile(m, io.BytesIO(d))
                n += 1; count += 1
        for m in tar:
            k = m.name.split(".", 1)[0]
            if k != key and group:
                flush(group); group = []
            key = k
            group.append((m, tar.extractfile(m).read()))
        if group:
            flush(group)
if out is not None:
    out.close()
print(count)
"""


def bench_reshard(shards: int, per_shard: int, image_kb: int) -> dict:
    src = os.path.join(OUT, "shards")
    uids = make_shards(src, shards, per_shard, image_kb)
    subset = os.path.join(OUT, "half.npy")
    np.save(subset, np.sort(np.array([divmod(int(u, 16), 2**64) for u in uids[::2]], dtype="u8,u8")))
    total_mb = sum(os.path.getsize(os.path.join(src, f)) for f in os.listdir(src)) / 1e6
    runs = {"curate": [], "tar": []}
    for _ in range(2):  # alternate the contenders
        dst = os.path.join(OUT, "resharded")
        shutil.rmtree(dst, ignore_errors=True)
        runs["curate"].append(measure_rss([sys.executable, "-m", "curate.run", "--pipeline", "reshard", "--input", src,
                                           "--subset", subset, "--output", dst, "--runner", "FnApiRunner"]))
        copy = os.path.join(OUT, "copied")
        shutil.rmtree(copy, ignore_errors=True)
        runs["tar"].append(measure_rss([sys.executable, "-c", PLAIN_COPY, src, copy, subset]))
        assert int(runs["tar"][-1]["stdout"]) == len(uids[::2])
    stats = json.load(open(os.path.join(OUT, "resharded", "stats.json")))
    assert stats["kept_in_shards"] == len(uids[::2])
    best = {name: min(r["wall_s"] for r in rs) for name, rs in runs.items()}
    return {"samples": len(uids), "kept": len(uids[::2]), "input_mb": round(total_mb, 1),
            "curate_wall_s": round(best["curate"], 2), "tar_copy_wall_s": round(best["tar"], 2),
            "curate_input_mb_per_s": round(total_mb / best["curate"], 1),
            "tar_copy_input_mb_per_s": round(total_mb / best["tar"], 1),
            "curate_samples_per_s": round(len(uids) / best["curate"]),
            "ratio_vs_tar_copy": round(best["tar"] / best["curate"], 2),
            "curate_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["curate"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--per_shard", type=int, default=1000)
    parser.add_argument("--image_kb", type=int, default=20)
    parser.add_argument("--skip", choices=["cut", "reshard"], default=None)
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    if args.skip != "cut":
        print(json.dumps({"recut": bench_cut(args.rows)}, indent=1), flush=True)
    if args.skip != "reshard":
        print(json.dumps({"reshard": bench_reshard(args.shards, args.per_shard, args.image_kb)}, indent=1), flush=True)


if __name__ == "__main__":
    main()
