"""Exact + pHash dedup by grouping (curate/dedup/near_graph.py) against today's one-step search.

Keys as in bench_dedup_hamming.py: n 64-bit hashes with 32 bits set, 10 % of them copies of
others with 0-4 flipped bits, every second row a byte copy of its neighbour (sha256), radius 4,
--dedup_keep first_uid. Each contender runs in its own child process (its own peak RSS):
- one-step: tests/dedup_reference.py's find_duplicates (FAISS pairs_within + union-find on all keys: one worker);
- steps: the graph's step functions called in-process, grouping done with a dict (the algorithm
  without Beam); reports the largest group a step held (what one worker holds on a cluster);
- beam: FindNearDuplicates on FnApiRunner, keys read from a memory-mapped file in batches of 1000.
Time is the step alone (keys generated before). The drop sets of one-step and the grouped rule
are compared (they differ only where a duplicate group's diameter exceeds 2).
Run: python benchmarks/bench_dedup_scale.py [--n 1000000] [--contenders one-step,steps,beam]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from itertools import chain

import numpy as np

from bench_dedup_hamming import phash_like
from curate.dedup import near_graph as G
from curate.dedup.keys import KEY_DTYPE
from curate.dedup.options import DedupSettings
from curate.io.parts import ROWS_PER_PART

BATCH = 1000


def make_keys(n: int, radius: int) -> np.ndarray:
    keys = np.zeros(n, dtype=KEY_DTYPE)
    keys["batch"] = np.char.mod(b"%05d-0000000000", np.arange(n) // BATCH)
    keys["pos"] = np.arange(n) % BATCH
    keys["uid"] = np.char.mod(b"%032x", np.random.default_rng(2).permutation(n))
    keys["score"] = np.nan
    keys["sha"] = np.char.mod(b"%016x", np.arange(n) // 2)  # every second row a byte copy
    keys["phash"], keys["has_phash"] = phash_like(n, radius), True
    return keys


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _group(items, held):
    groups = defaultdict(list)
    for key, value in items:
        groups[key].append(value)
    for values in groups.values():
        arrays = [v[1] if isinstance(v, tuple) else v for v in values]
        held[0] = max(held[0], sum(a.nbytes for a in arrays))
    return sorted(groups.items())


def _split(outputs):
    main, tagged = [], defaultdict(list)
    for out in outputs:
        if hasattr(out, "tag"):
            tagged[out.tag].append(out.value)
        else:
            main.append(out)
    return main, tagged


def run_steps(keys: np.ndarray, cfg: DedupSettings, per_part: int):
    """The graph's steps in order, grouping with a dict: (drops, largest group held in bytes)."""
    batches = [keys[i:i + BATCH] for i in range(0, len(keys), BATCH)]
    sizes, r, held = (len(keys), int(keys["has_phash"].sum())), cfg.phash_radius, [0]
    values = _group(chain.from_iterable(G._values(b, sizes, per_part) for b in batches), held)
    entries = _group(chain.from_iterable(G._file_in_bands(v, sizes, r, per_part) for v in values), held)
    edges, _ = _split(chain.from_iterable(G._edges(e, sizes, r, per_part) for e in entries))
    offered = batches
    for _ in range(2):
        hubs = _group(chain(chain.from_iterable(G._to_hubs(a, sizes, ["sha", "phash"], per_part)
                                                for a in offered), edges), held)
        told, tagged = _split(chain.from_iterable(G._hub(h, sizes, cfg.keep, per_part) for h in hubs))
        spread = _group(tagged[G.SPREAD], held)
        told += list(chain.from_iterable(G._spread(s, sizes, cfg.keep, per_part) for s in spread))
        offered = [b for item in _group(told, held) for b in G._best_per_row(item, cfg.keep)]
    drops, _ = _split(chain.from_iterable(G._decide(f, sizes, cfg, per_part) for f in offered))
    return np.concatenate([d for _, d in drops]), held[0]


def run_beam(path: str, n: int, cfg: DedupSettings, per_part: int):
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    out = path + ".drops"
    with beam.Pipeline(runner=FnApiRunner()) as p:
        keys = (p | beam.Create(list(range(0, n, BATCH)))
                | beam.Map(lambda start: np.array(np.load(path, mmap_mode="r")[start:start + BATCH])))
        drops, facts = keys | G.FindNearDuplicates(cfg, per_part)
        (drops | beam.Map(lambda kv: int(len(kv[1]))) | beam.CombineGlobally(sum)
         | beam.Map(lambda total: open(out, "w").write(str(total))))
        facts | beam.Map(lambda f: open(out + ".facts", "w").write(json.dumps(f[1])))
    with open(out) as f, open(out + ".facts") as g:
        return int(f.read()), json.loads(g.read())


def child(args):
    from tests.dedup_reference import find_duplicates

    keys = np.load(args.keys)
    cfg = DedupSettings(url=False, phash_radius=args.radius, keep="first_uid")
    base = peak_mb()
    t0 = time.perf_counter()
    result = {"contender": args.child, "n": len(keys)}
    if args.child == "one-step":
        drops, facts = find_duplicates(keys, url=False, sha=True, phash_radius=args.radius, keep="first_uid")
        result.update(dropped=len(drops), largest_group_mb=keys.nbytes / 2**20)
        np.save(args.keys + ".one.npy", np.sort(drops[["batch", "pos"]].astype([("b", "S32"), ("p", "<i4")])))
    elif args.child == "steps":
        drops, held = run_steps(keys, cfg, args.per_part)
        result.update(dropped=len(drops), largest_group_mb=held / 2**20)
        np.save(args.keys + ".steps.npy", np.sort(drops[["batch", "pos"]].astype([("b", "S32"), ("p", "<i4")])))
    else:
        del keys
        dropped, facts = run_beam(args.keys, args.n, cfg, args.per_part)
        result.update(dropped=dropped, largest_bucket=facts["largest_bucket"], index=facts["index"])
    result.update(seconds=time.perf_counter() - t0, peak_rss_mb=peak_mb(), rss_before_mb=base)
    print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--radius", type=int, default=4)
    ap.add_argument("--per_part", type=int, default=ROWS_PER_PART)
    ap.add_argument("--contenders", default="one-step,steps,beam")
    ap.add_argument("--child"), ap.add_argument("--keys")
    args = ap.parse_args()
    if args.child:
        return child(args)
    tmp = tempfile.mkdtemp(prefix="bench_dedup_scale")
    path = os.path.join(tmp, "keys.npy")
    np.save(path, make_keys(args.n, args.radius))
    print(f"{args.n:,} keys, radius {args.radius}, {args.per_part:,} rows per part; load {os.getloadavg()[0]:.1f}")
    print("| contender | s | s per 1M keys | dropped | largest group held | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name in args.contenders.split(","):
        cmd = [sys.executable, __file__, "--child", name, "--keys", path, "--n", str(args.n),
               "--radius", str(args.radius), "--per_part", str(args.per_part)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        held = f"{r['largest_group_mb']:.0f} MB" if "largest_group_mb" in r else f"bucket {r['largest_bucket']} values"
        print(f"| {name} | {r['seconds']:.1f} | {r['seconds'] * 1e6 / args.n:.1f} | {r['dropped']:,} | {held} | "
              f"{r['peak_rss_mb']:.0f} |", flush=True)
    if os.path.exists(path + ".one.npy") and os.path.exists(path + ".steps.npy"):
        one, steps = np.load(path + ".one.npy"), np.load(path + ".steps.npy")
        print(f"dropped by one-step only: {len(np.setdiff1d(one, steps)):,}; "
              f"by the grouped rule only: {len(np.setdiff1d(steps, one)):,}; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
