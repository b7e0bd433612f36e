"""pHash near-duplicate search at scale: FAISS binary indexes compared, then the global step.

1M 64-bit hashes (32 bits set, as pHash's median threshold gives) of which 10 % are copies of
others with 0-4 flipped bits, searched at radius 4 on this machine's cores:
1. the index the cost model picks (curate/dedup/hamming.py) runs the full search, then the whole
   global step (tests/dedup_reference.py: sort, URL/sha256 groups, pHash search, union-find,
   keepers) on 1M keys: wall time and peak memory above the process's baseline;
2. each candidate index answers 20k range queries against all 1M (time x 50 = the full search).
Run: python benchmarks/bench_dedup_hamming.py [--n 1000000] [--radius 4]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import faiss
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/ holds the reference
from curate.dedup import hamming
from curate.dedup.keys import KEY_DTYPE
from tests.dedup_reference import find_duplicates  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def phash_like(n: int, radius: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hashes = np.empty(n, dtype=np.uint64)
    for start in range(0, n, 100_000):  # in chunks: keep the generator's memory out of the figures
        bits = np.argsort(rng.random((min(100_000, n - start), 64)), axis=1)[:, :32]  # 32 of 64 set
        hashes[start:start + len(bits)] = np.bitwise_or.reduce(np.uint64(1) << bits.astype(np.uint64), axis=1)
    copies = n // 10
    source = rng.integers(0, n - copies, size=copies)
    flipped = hashes[source].copy()
    for k in range(radius):
        bit = np.uint64(1) << rng.integers(0, 64, size=copies).astype(np.uint64)
        flipped ^= np.where(rng.random(copies) < 0.5, bit, np.uint64(0))
    hashes[n - copies:] = flipped
    return hashes


def candidates(radius: int):
    yield "IndexBinaryFlat", lambda: faiss.IndexBinaryFlat(64)
    for nhash in range(2, radius + 2):
        bits, nflip = 64 // nhash, radius // nhash

        def make(nhash=nhash, bits=bits, nflip=nflip):
            index = faiss.IndexBinaryMultiHash(64, nhash, bits)
            index.nflip = nflip
            return index
        yield f"IndexBinaryMultiHash(nhash={nhash}, b={bits}, nflip={nflip})", make
    for bits in (16, 24):
        def make_hash(bits=bits):
            index = faiss.IndexBinaryHash(64, bits)
            index.nflip = radius
            return index
        yield f"IndexBinaryHash(b={bits}, nflip={radius})", make_hash


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--radius", type=int, default=4)
    ap.add_argument("--queries", type=int, default=20_000)
    args = ap.parse_args()
    hashes = phash_like(args.n, args.radius)
    unique = np.unique(hashes)
    codes = hamming.as_codes(unique)
    queries = codes[np.random.default_rng(1).choice(len(codes), args.queries, replace=False)]
    scale = len(codes) / args.queries
    print(f"{args.n:,} hashes ({len(unique):,} distinct), radius {args.radius}, "
          f"{faiss.omp_get_max_threads()} threads\n")
    base = current_rss_mb()
    plan = hamming.plan_index(len(unique), args.radius)
    print(f"cost model picks: {plan.describe()}")
    t0 = time.perf_counter()
    i, j, d, _ = hamming.pairs_within(hashes, args.radius)
    print(f"pairs_within on all {args.n:,}: {time.perf_counter() - t0:.1f} s, {len(i):,} edges, "
          f"max distance {d.max() if len(d) else 0}")
    keys = np.zeros(args.n, dtype=KEY_DTYPE)
    keys["batch"] = np.char.mod(b"%05d-0000000000", np.arange(args.n) // 1000)
    keys["pos"] = np.arange(args.n) % 1000
    keys["uid"] = np.char.mod(b"%032x", np.random.default_rng(2).permutation(args.n))
    keys["score"] = np.nan
    keys["sha"] = np.char.mod(b"%016x", np.arange(args.n) // 2)  # every second row a byte copy
    keys["phash"], keys["has_phash"] = hashes, True
    del i, j, d
    before_peak = peak_rss_mb()
    t0 = time.perf_counter()
    drops, facts = find_duplicates(keys, url=True, sha=True, phash_radius=args.radius, keep="first_uid")
    seconds = time.perf_counter() - t0
    print(f"global step (find_duplicates) on {args.n:,} keys: {seconds:.1f} s wall, "
          f"{len(drops):,} dropped ({facts['dropped_by_reason']}), largest group {facts['largest_group']}")
    print(f"memory: keys {keys.nbytes / 2**20:.0f} MB; process peak {peak_rss_mb():.0f} MB, "
          f"{peak_rss_mb() - base:.0f} MB above the {base:.0f} MB before any search "
          f"(peak before the global step: {before_peak:.0f} MB)\n")
    print("| index | build s | full search s (extrapolated) | pairs found in sample |")
    print("|---|---|---|---|")
    for name, make in candidates(args.radius):
        t0 = time.perf_counter()
        index = make()
        index.add(codes)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        lims, _, _ = index.range_search(queries, args.radius + 1)
        searched = time.perf_counter() - t0
        print(f"| {name} | {built:.2f} | {searched * scale:.1f} | {int(lims[-1]):,} |", flush=True)
        del index


if __name__ == "__main__":
    main()
