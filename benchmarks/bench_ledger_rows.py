"""Ledger rows into the run's schema: what exact casts (issue 23) cost against the code before.

Times, on N synthetic rows shaped like an image run's (url, caption, source key, sizes, a score,
entry ids, carried columns), the two conversions every run pays: `samples_to_batch` + `conform`
(ledger parts) and `rows_to_table` (shard sidecars), once with every value fitting its column
and once with a later file's types (text in an integer column, floats in an integer column,
bools among floats). With --baseline REV the same timings run with that commit's code (a
temporary git worktree, in a child process), the two trees taking turns, so the ratio compares
like with like; times are CPU seconds of the child, best of 3 per turn, best turn kept.

Run: python benchmarks/bench_ledger_rows.py --rows 30000 --baseline d0ad439
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r'''
import json, sys, time
import pyarrow as pa
from curate.io.ledger_batch import conform, ledger_row, samples_to_batch
from curate.io.run_schema import build_schema, rows_to_table
from curate.sample import Sample

n, mixed = int(sys.argv[1]), sys.argv[2] == "mixed"
schema = build_schema({"metaclip_keep_prob": pa.float64(), "entry_ids": pa.list_(pa.int32())},
                      {"tag": pa.int64(), "score": pa.float64(), "note": pa.string()})
samples = []
for i in range(n):
    odd = mixed and i % 3 == 0  # a later file's types: text, a float, a bool where the first had others
    s = Sample(uid=f"{i:032x}", url=f"http://x.example/{i}.jpg", caption=f"a photo number {i}",
               source_key=f"{i}.jpg", width=640, height=480, image_format="jpg", sha256=f"{i:064x}",
               extras={"tag": "007" if odd else i, "score": True if odd else i / 7, "note": i if odd else f"n{i}"})
    s.values.update(metaclip_keep_prob=0.5, entry_ids=[i % 100, 7])
    samples.append(s)
reasons = [None if i % 4 else "metaclip:no_match" for i in range(n)]
best = {}
for name in ("ledger", "sidecar"):
    for _ in range(3):
        t0 = time.process_time()  # CPU time: the shared machine's other jobs count less
        for start in range(0, n, 1000):
            part, why = samples[start:start + 1000], reasons[start:start + 1000]
            if name == "ledger":
                conform([samples_to_batch(part, why)], schema)
            else:
                rows_to_table([ledger_row(s, None) for s in part], schema)
        best[name] = min(best.get(name, 1e9), time.process_time() - t0)
print(json.dumps({k: n / v for k, v in best.items()}))
'''


def rates(code_root: str, rows: int, kind: str) -> dict:
    env = {**os.environ, "PYTHONPATH": code_root}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(rows), kind], cwd=code_root, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--baseline", help="a commit to time side by side (e.g. the one before this change)")
    ap.add_argument("--rounds", type=int, default=3, help="turns each tree takes; the best of them counts")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        codes = {"this tree": ROOT}
        if args.baseline:
            codes["baseline"] = os.path.join(tmp, "baseline")
            subprocess.run(["git", "-C", ROOT, "worktree", "add", "-q", "--detach", codes["baseline"], args.baseline],
                           check=True)
        try:
            found: dict = {}
            for _ in range(args.rounds):  # the trees take turns: a busy moment slows both alike
                for kind in ("fitting", "mixed"):
                    for name, root in codes.items():
                        got, best = rates(root, args.rows, kind), found.setdefault((kind, name), {})
                        for k, v in got.items():
                            best[k] = max(best.get(k, 0), v)
            print("| rows | values | code | ledger rows/s | sidecar rows/s |\n|---:|---|---|---:|---:|")
            for (kind, name), got in found.items():
                print(f"| {args.rows:,} | {kind} | {name} | {got['ledger']:,.0f} | {got['sidecar']:,.0f} |")
            if args.baseline:
                for kind in ("fitting", "mixed"):
                    new, old = found[kind, "this tree"], found[kind, "baseline"]
                    print(f"ratio ({kind}): ledger {new['ledger'] / old['ledger']:.2f}, "
                          f"sidecar {new['sidecar'] / old['sidecar']:.2f}")
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", codes["baseline"]])


if __name__ == "__main__":
    main()
