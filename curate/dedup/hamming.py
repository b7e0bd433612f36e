"""All pairs of 64-bit hashes within a Hamming radius, with a FAISS binary index, on one worker.

Used by the band search (bands.py) for a bucket too large to compare all its pairs, and by the
one-step reference (tests/dedup_reference.py).

The index is chosen by a cost model fitted to measurements (benchmarks/bench_dedup_hamming.py,
2 cores): `IndexBinaryMultiHash` splits the 64 bits into h disjoint chunks of b = 64 // h bits
and probes every chunk value within nflip = radius // h flips of the query's; two hashes within
the radius differ in at most that many bits in at least one chunk (pigeonhole), so the search
is exact. Tiny inputs use `IndexBinaryFlat` (brute force). Identical hashes are collapsed
before the search, so a thousand copies of one image cost one query, not a million pairs.
"""
from __future__ import annotations

from math import comb
from typing import NamedTuple

import numpy as np

from curate.dedup.components import star_edges

BITS = 64
# Measured on 2 cores (faiss-cpu 1.15): ns per hash-table probe, per candidate compared by a
# multi-hash index, and per pair compared by the flat index.
PROBE_NS, CANDIDATE_NS, FLAT_PAIR_NS = 176.0, 113.0, 1.8


class IndexPlan(NamedTuple):
    kind: str  # "equal" (radius 0: no index) | "flat" | "multihash"
    nhash: int = 0
    bits: int = 0
    nflip: int = 0
    cost_ns: float = 0.0

    def describe(self) -> str:
        if self.kind == "equal":
            return "equal hashes only"
        if self.kind == "flat":
            return "IndexBinaryFlat"
        return f"IndexBinaryMultiHash(nhash={self.nhash}, b={self.bits}, nflip={self.nflip})"


def plan_index(n: int, radius: int) -> IndexPlan:
    """The cheapest exact index for n hashes searched at `radius`, by the measured cost model."""
    if radius == 0:
        return IndexPlan("equal")
    best = IndexPlan("flat", cost_ns=FLAT_PAIR_NS * n * n)
    for nhash in range(2, radius + 2):  # more chunks than radius + 1 only adds candidates
        bits = BITS // nhash
        nflip = radius // nhash
        probes = sum(comb(bits, k) for k in range(nflip + 1))
        cost = n * nhash * probes * (PROBE_NS + CANDIDATE_NS * n / 2.0 ** bits)
        if cost < best.cost_ns:
            best = IndexPlan("multihash", nhash, bits, nflip, cost)
    return best


def build_index(codes: np.ndarray, plan: IndexPlan):
    import faiss  # lazily: only the global step needs it

    if plan.kind == "flat":
        index = faiss.IndexBinaryFlat(BITS)
    else:
        index = faiss.IndexBinaryMultiHash(BITS, plan.nhash, plan.bits)
        index.nflip = plan.nflip
    index.add(codes)
    return index


def as_codes(hashes: np.ndarray) -> np.ndarray:
    """uint64 hashes as the (n, 8) uint8 codes FAISS binary indexes take."""
    return np.ascontiguousarray(hashes.astype("<u8")).view(np.uint8).reshape(-1, 8)


def popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x.astype(np.uint64)).astype(np.int64)


def pairs_within(hashes: np.ndarray, radius: int,
                 plan: IndexPlan | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, IndexPlan]:
    """Edges (i < j, Hamming distance) joining every two rows within `radius`, and the index used.

    Not every pair: rows with equal hashes form a star through the first of them, and a pair of
    distinct values joins the first row of each. The connected components are those of all pairs.
    `plan`: an index to use instead of the cost model's pick (it must be exact for the radius).
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    unique, inverse = np.unique(hashes, return_inverse=True)
    plan = plan or plan_index(len(unique), radius)
    i, j = star_edges(inverse)
    if len(unique) > 1 and plan.kind != "equal":
        ui, uj = distinct_pairs(unique, radius, plan)
        # a pair of distinct values joins the first row holding each: enough for components
        first = np.zeros(len(unique), dtype=np.int64)
        rows = np.arange(len(hashes))[::-1]
        first[inverse[rows]] = rows
        i, j = np.r_[i, first[ui]], np.r_[j, first[uj]]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return lo, hi, popcount(hashes[lo] ^ hashes[hi]), plan


def distinct_pairs(unique: np.ndarray, radius: int,
                   plan: IndexPlan | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions (i < j) of every two of these distinct values within `radius` (radius > 0)."""
    plan = plan or plan_index(len(unique), radius)
    if plan.kind == "equal":
        plan = IndexPlan("flat")
    codes = as_codes(unique)
    index = build_index(codes, plan)
    lims, _, found = index.range_search(codes, radius + 1)  # FAISS: distance < radius + 1
    queries = np.repeat(np.arange(len(unique)), np.diff(lims).astype(np.int64))
    keep = queries < found
    return queries[keep].astype(np.int64), found[keep].astype(np.int64)
