"""Matcher throughput (captions/s, one core) vs a plain pyahocorasick implementation.

Same semantics (tests/test_matcher.py checks equality), same ~500k-entry metadata, same
captions; also automaton build time and memory. Run: python benchmarks/bench_matcher.py
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(__file__))
from corpus import markov_captions, metadata_of_size  # noqa: E402

from curate.metaclip.matcher import AhoCorasickMatcher, Matcher  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build(cls, entries):
    gc.collect()
    before = rss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    matcher = cls(entries)
    seconds = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    return matcher, seconds, max(traced, rss_mb() - before)


def throughputs(match_batches, captions, rounds=5, batch=1000):
    """Best captions/s of each; the contenders alternate within every round, so a noisy
    neighbour slows both alike instead of whichever happened to run then."""
    best = [float("inf")] * len(match_batches)
    for _ in range(rounds):
        for k, match_batch in enumerate(match_batches):
            t0 = time.perf_counter()
            for i in range(0, len(captions), batch):
                match_batch(captions[i:i + batch])
            best[k] = min(best[k], time.perf_counter() - t0)
    return [len(captions) / b for b in best]


def one_by_one(matcher):
    return lambda texts: [matcher.match(t) for t in texts]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=500_000)
    ap.add_argument("--captions", type=int, default=200_000)
    ap.add_argument("--extra_captions", nargs="*", default=[], help="more real caption files (one per line / TSV)")
    args = ap.parse_args()
    captions = markov_captions(args.captions, extra_files=args.extra_captions)
    entries = metadata_of_size(args.entries, captions)
    print(f"{len(entries):,} entries ({sum(' ' in e for e in entries):,} multi-word), "
          f"{len(captions):,} captions, mean {sum(map(len, captions)) / len(captions):.0f} chars")
    fast, fast_build, fast_mem = build(Matcher, entries)
    plain, plain_build, plain_mem = build(AhoCorasickMatcher, entries)
    mismatches = sum(fast.match(c) != plain.match(c) for c in captions[:20000])
    plain_rate, fast_rate = throughputs([one_by_one(plain), fast.match_many], captions)
    matches = sum(len(fast.match(c)) for c in captions[:20000]) / 20000
    print(f"mean matches per caption: {matches:.1f}; mismatches on 20k captions: {mismatches}")
    print(f"{'':24}{'captions/s':>12}{'build s':>10}{'memory MB':>11}")
    print(f"{'Matcher':24}{fast_rate:>12,.0f}{fast_build:>10.2f}{fast_mem:>11.0f}")
    print(f"{'plain pyahocorasick':24}{plain_rate:>12,.0f}{plain_build:>10.2f}{plain_mem:>11.0f}")
    print(f"speed ratio: {fast_rate / plain_rate:.2f}x the plain implementation")


if __name__ == "__main__":
    main()
