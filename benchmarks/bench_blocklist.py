"""Block lists at scale: build time, lookup rate and memory per million entries.

For each kind measured (md5: an exact list such as IWF's or C3P's; pdq: a ThreatExchange-style
list searched within 31 bits), a synthetic list of N random entries is written as text lines
(`hash,quality`, as ThreatExchange writes them) and then, each in a fresh process:
- build: `curate.blocklist.build.build_indexes` (parse, sort, write the memory-mapped files);
- lookups: `BlockCheck` on the built files: exact lookups of 100k MD5s (one call per image, as
  a worker makes them), and PDQ radius-31 searches of random hashes and of hashes 20 bits from
  a listed entry; the baseline is the same answer by brute force (NumPy popcount over all N);
- memory: the index's bytes on disk (what a worker maps; its page cache is shared by every
  worker process of a machine) per million entries, and the worker's peak RSS after opening
  the list and doing the lookups (from wait4), against a bare Python process's.

Run: python benchmarks/bench_blocklist.py [--md5 1000000 10000000] [--pdq 1000000]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out", "blocklist")

WORKER = r"""
import json, sys, time
import numpy as np
from curate.blocklist.check import open_check
from curate.blocklist.build import manifest_path
from curate.hashes.pdq import MIN_QUALITY

out, kind, n_queries = sys.argv[1], sys.argv[2], int(sys.argv[3])
check = open_check(manifest_path(out))
(entry, index), = check.lists
rng = np.random.default_rng(1)
result = {}
if kind == "md5":
    listed = index.rows[rng.integers(len(index.rows), size=n_queries // 2)]
    queries = np.vstack([listed, rng.integers(0, 256, (n_queries - len(listed), 16), dtype=np.uint8)])
    started = time.perf_counter()
    hits = sum(bool(index.contains(q.reshape(1, -1))[0]) for q in queries)
    result["lookups_per_s"] = n_queries / (time.perf_counter() - started)
    result["hits"] = hits
else:
    pop = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)
    near = np.unpackbits(index.rows[rng.integers(len(index.rows), size=n_queries)], axis=1)
    for row in near:
        row[rng.choice(256, 20, replace=False)] ^= 1
    for name, queries in (("random", rng.integers(0, 256, (n_queries, 32), dtype=np.uint8)),
                          ("near", np.packbits(near, axis=1))):
        started = time.perf_counter()
        found = [index.nearest(q, 31) for q in queries]
        result[f"{name}_per_s"] = n_queries / (time.perf_counter() - started)
        result[f"{name}_hits"] = sum(f is not None for f in found)
        if name == "near":  # brute force on a few queries: the same answers, and its rate
            started = time.perf_counter()
            brute = [int(pop[np.bitwise_xor(index.rows, q)].sum(axis=1).min()) for q in queries[:20]]
            result["brute_per_s"] = 20 / (time.perf_counter() - started)
            assert [b if b <= 31 else None for b in brute] == found[:20]
print(json.dumps(result))
"""

BUILD = r"""
import sys, time
from curate.blocklist.build import build_indexes
from curate.blocklist.options import BlockSettings, ListSpec
path, kind, out = sys.argv[1:4]
started = time.perf_counter()
build_indexes(BlockSettings((ListSpec("bench", kind, path),)), out)
print(time.perf_counter() - started)
"""


def write_list(path: str, kind: str, n: int) -> None:
    width = 16 if kind == "md5" else 32
    rng = np.random.default_rng(n)
    with open(path, "wb") as f:
        for start in range(0, n, 1_000_000):
            rows = rng.integers(0, 256, (min(1_000_000, n - start), width), dtype=np.uint8)
            hexed = np.char.add(np.array([r.tobytes().hex() for r in rows]), ",100\n")
            f.write("".join(hexed.tolist()).encode())


def run(code: str, *args) -> tuple[str, float]:
    """stdout and peak RSS (MB) of a fresh Python process."""
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode()
    if status:
        raise SystemExit(f"benchmark step failed: {args}")
    return out, usage.ru_maxrss / 1024


def folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files
               if f.endswith(".npy"))


def bench(kind: str, n: int, queries: int, bare_rss: float) -> dict:
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{kind}-{n}.txt")
    if not os.path.exists(path):
        write_list(path, kind, n)
    out = os.path.join(OUT, f"out-{kind}-{n}")
    shutil.rmtree(out, ignore_errors=True)
    seconds, build_rss = run(BUILD, path, kind, out)
    index_bytes = folder_bytes(os.path.join(out, "_spill", "blocklists"))
    result, worker_rss = run(WORKER, out, kind, queries)
    shutil.rmtree(out, ignore_errors=True)
    return {"kind": kind, "entries": n, "list_file_mb": round(os.path.getsize(path) / 2**20, 1),
            "build_s": round(float(seconds), 2), "build_peak_rss_mb": round(build_rss),
            "index_mb_per_million": round(index_bytes / 2**20 / (n / 1e6), 1),
            "worker_peak_rss_mb": round(worker_rss), "bare_python_rss_mb": round(bare_rss),
            **{k: round(v) if isinstance(v, float) else v for k, v in json.loads(result).items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--md5", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--pdq", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--queries", type=int, default=100_000)
    args = parser.parse_args()
    _, bare = run("import curate.blocklist.check")  # the modules a worker has loaded anyway
    rows = [bench("md5", n, args.queries, bare) for n in args.md5]
    rows += [bench("pdq", n, min(args.queries, 2000), bare) for n in args.pdq]
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
