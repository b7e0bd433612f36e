"""The text-only metaclip pipeline on FnApiRunner vs the bare matcher, same captions.

Writes N real-looking captions as a Parquet URL list, runs `python -m curate.run --pipeline
metaclip --download=false` on it in a subprocess (peak RSS from the kernel), and times the bare
Matcher on the same captions in this process. Reports captions/s, the ratio, and peak RSS for
several N, to show how memory grows with the pool.

With --baseline REV the same runs are made with that commit's code too (a temporary worktree,
run with this interpreter), each size's runs right after each other, so the two graphs are
compared on the same machine in the same minutes.

Run: python benchmarks/bench_metaclip_pipeline.py --sizes 1000000 4000000 --baseline d0ad439
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from corpus import markov_captions  # noqa: E402

from curate.metaclip.matcher import Matcher  # noqa: E402
from curate.metaclip.metadata import load_metadata  # noqa: E402


def write_url_list(path: str, captions: list[str]) -> None:
    urls = [f"http://img{i % 97}.example.com/{i}.jpg" for i in range(len(captions))]
    pq.write_table(pa.table({"url": urls, "caption": captions}), path, row_group_size=100_000)


def bare_matcher_rate(captions: list[str]) -> float:
    matcher = Matcher(load_metadata())
    t0 = time.perf_counter()
    for i in range(0, len(captions), 1000):
        matcher.match_many(captions[i:i + 1000])
    return len(captions) / (time.perf_counter() - t0)


# The child reports its own peak (VmHWM, reset by exec): ru_maxrss of a child would also count
# the pages it shared with this parent between fork and exec, i.e. this process's captions.
_CHILD = ("import sys; from curate.run import main; rc = main(sys.argv[1:]); "
          "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]; "
          "sys.stderr.write(f'VmHWM_KB {hwm}\\n'); sys.exit(rc)")


def pipeline_run(path: str, output: str, extra: list[str], code_root: str | None = None) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": code_root} if code_root else None
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, "--input", path, "--download=false",
                           "--output", output, *extra], check=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, cwd=code_root, env=env)
    seconds = time.perf_counter() - t0
    peak_kb = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("VmHWM_KB"))
    return seconds, peak_kb / 1024  # MiB


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[250_000, 500_000, 1_000_000])
    ap.add_argument("--batch_size", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=1,
                    help="FnApiRunner SDK worker processes (>1: multi_processing; peak RSS is then "
                         "the runner's process only)")
    ap.add_argument("--baseline", help="a commit run side by side (e.g. d0ad439: the column-wise text graph)")
    args = ap.parse_args()
    captions = markov_captions(max(args.sizes))
    print(f"{'captions':>10}{'code':>10}{'pipeline/s':>12}{'bare/s':>10}{'ratio':>7}{'peak RSS MiB':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        codes = {"this": None}
        if args.baseline:
            codes["baseline"] = os.path.join(tmp, "baseline")
            subprocess.run(["git", "-C", os.path.dirname(HERE), "worktree", "add", "-q", "--detach",
                            codes["baseline"], args.baseline], check=True)
        try:
            for n in sorted(args.sizes):
                path = os.path.join(tmp, f"urls_{n}.parquet")
                write_url_list(path, captions[:n])
                workers = ["--direct_num_workers", str(args.workers), "--direct_running_mode",
                           "multi_processing"] if args.workers > 1 else []
                for name, code in codes.items():
                    seconds, peak = pipeline_run(path, os.path.join(tmp, f"out_{name}_{n}"),
                                                 ["--batch_size", str(args.batch_size), *workers], code)
                    bare = bare_matcher_rate(captions[:n])  # right after the run it is compared with
                    rate = n / seconds
                    print(f"{n:>10,}{name:>10}{rate:>12,.0f}{bare:>10,.0f}{rate / bare:>7.2f}{peak:>14,.0f}",
                          flush=True)
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", os.path.dirname(HERE), "worktree", "remove", "--force",
                                codes["baseline"]])


if __name__ == "__main__":
    main()
