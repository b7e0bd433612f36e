"""pHash pairs within a radius by multi-index hashing: bucket keys the engine can group on.

Split the 64 bits into m bands (contiguous bit ranges). Two hashes within r bits differ in at
most r bands, so they agree exactly on at least k = m - r of them (pigeonhole): every such pair
shares the key `hash & mask` of one k-band combination. Each distinct hash value is filed under
all C(m, k) combination keys; inside a bucket (one combination, one key) candidates are checked
by their true Hamming distance, and a pair is kept only in the bucket of the first combination
(lexicographic) among the bands it agrees on, so it is found once. k = 1 is classic multi-index
hashing (r + 1 bands); a larger k makes keys longer (far fewer candidates per bucket) for more
keys per hash, and `plan_bands` picks m by a cost model. The search is exact for any m.
A bucket larger than BIG_BUCKET (a cluster of near-identical distinct hashes) is searched with
FAISS (hamming.py) instead of all its pairs; identical hashes never reach a bucket twice
(callers pass distinct values).
"""
from __future__ import annotations

from itertools import combinations
from math import comb
from typing import NamedTuple

import numpy as np

from curate.dedup import hamming

BITS = 64
BIG_BUCKET = 4096
COMBO_SHIFT = 56
PAIRS_PER_CHUNK = 1 << 22  # candidate pairs checked at once (~100 MB of temporaries)
# ns per (hash, key) entry filed (emitted, shuffled, sorted) and per candidate pair checked,
# measured in benchmarks/bench_dedup_scale.py (2 cores)
ENTRY_NS, PAIR_NS = 200.0, 150.0


class BandPlan(NamedTuple):
    radius: int
    masks: tuple[int, ...]  # one bit mask per band
    agree: int  # k: bands two hashes within the radius certainly agree on

    @property
    def combos(self) -> list[tuple[int, ...]]:
        return list(combinations(range(len(self.masks)), self.agree))

    def describe(self) -> str:
        widths = sorted({bin(m).count("1") for m in self.masks})
        return (f"{len(self.masks)} bands of {'-'.join(map(str, widths))} bits, buckets on "
                f"{self.agree} equal bands ({len(self.combos)} keys per hash)")


def _masks(m: int) -> tuple[int, ...]:
    widths = [BITS // m + (1 if b < BITS % m else 0) for b in range(m)]
    offsets = np.cumsum([0] + widths[:-1])
    return tuple(((1 << w) - 1) << int(o) for w, o in zip(widths, offsets))


def _cost_ns(n: int, masks: tuple[int, ...], agree: int) -> float:
    cost = 0.0
    for combo in combinations(masks, agree):
        bits = sum(bin(m).count("1") for m in combo)
        cost += ENTRY_NS * n + PAIR_NS * n * n / 2.0 ** (bits + 1)
    return cost


def plan_bands(n: int, radius: int) -> BandPlan | None:
    """The cheapest band layout for n distinct hashes at `radius` (None at radius 0: no search)."""
    if radius <= 0:
        return None
    best, best_cost = None, float("inf")
    for agree in range(1, 7):
        m = radius + agree
        if m > BITS or comb(m, agree) > 256:
            break
        masks = _masks(m)
        if sum(sorted(bin(x).count("1") for x in masks)[-agree:]) > COMBO_SHIFT:
            continue  # the packed key would not fit under the combination index
        cost = _cost_ns(max(n, 2), masks, agree)
        if cost < best_cost:
            best, best_cost = BandPlan(radius, masks, agree), cost
    return best


def entries(values: np.ndarray, plan: BandPlan) -> tuple[np.ndarray, np.ndarray]:
    """(bucket key, value) for every distinct value under every combination. A key is the
    combination's index in its top 8 bits above the bits of its bands, packed: one integer
    per bucket (k / m <= 6 / 7 keeps the packed bits under 56)."""
    values = np.asarray(values, dtype=np.uint64)
    keys = []
    for index, combo in enumerate(plan.combos):
        key, shift = np.full(len(values), index << COMBO_SHIFT, dtype=np.uint64), 0
        for band in combo:
            mask = plan.masks[band]
            low = (mask & -mask).bit_length() - 1
            key |= ((values & np.uint64(mask)) >> np.uint64(low)) << np.uint64(shift)
            shift += bin(mask).count("1")
        keys.append(key)
    return np.concatenate(keys) if keys else np.zeros(0, np.uint64), np.tile(values, len(keys))


def _first_combo(plan: BandPlan) -> np.ndarray:
    """For each set of equal bands (bit b: band b equal), the index of its first k-combination."""
    index = {sum(1 << b for b in c): i for i, c in enumerate(plan.combos)}
    table = np.full(1 << len(plan.masks), -1, dtype=np.int32)
    for mask in range(len(table)):
        bits = [b for b in range(len(plan.masks)) if mask >> b & 1][:plan.agree]
        if len(bits) == plan.agree:
            table[mask] = index[sum(1 << b for b in bits)]
    return table


def _keep(a: np.ndarray, b: np.ndarray, combo: np.ndarray, plan: BandPlan, first: np.ndarray) -> np.ndarray:
    """Mask of candidate pairs within the radius whose first equal-band combination is `combo`."""
    diff = a ^ b
    close = hamming.popcount(diff) <= plan.radius
    equal = np.zeros(len(diff), dtype=np.int64)
    for band, mask in enumerate(plan.masks):
        equal |= ((diff & np.uint64(mask)) == 0).astype(np.int64) << band
    return close & (first[equal] == combo)


def _small_run_pairs(starts: np.ndarray, sizes: np.ndarray):
    """(i, j) positions, i < j, of every pair inside each run, in chunks of bounded size."""
    pos = np.repeat(starts, sizes) + (np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes))
    later = np.repeat(starts + sizes, sizes) - pos - 1
    cum = np.cumsum(later)
    edges = np.r_[0, np.searchsorted(cum, np.arange(PAIRS_PER_CHUNK, cum[-1] if len(cum) else 0,
                                                    PAIRS_PER_CHUNK)), len(pos)]
    for lo, hi in zip(edges[:-1], edges[1:]):
        counts = later[lo:hi]
        i = np.repeat(pos[lo:hi], counts)
        j = i + 1 + np.arange(len(i)) - np.repeat(np.cumsum(counts) - counts, counts)
        yield i, j


def bucket_pairs(key: np.ndarray, values: np.ndarray, plan: BandPlan) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs (a, b) of distinct values within the radius found in these buckets, once each,
    and the largest bucket (values in it)."""
    order = np.argsort(key)
    key = key[order]
    same = key[1:] == key[:-1]  # most buckets hold one value: only the others go on
    in_bucket = np.zeros(len(key), dtype=bool)
    in_bucket[:-1] |= same
    in_bucket[1:] |= same
    shared = np.flatnonzero(in_bucket)
    if not len(shared):
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64), int(len(key) > 0)
    key, values = key[shared], values[order[shared]]
    starts = np.flatnonzero(np.r_[True, ~same[shared[1:] - 1]])
    sizes = np.diff(np.r_[starts, len(shared)])
    combo = (key >> np.uint64(COMBO_SHIFT)).astype(np.int32)
    first = _first_combo(plan)
    found_a, found_b = [np.zeros(0, np.uint64)], [np.zeros(0, np.uint64)]
    small = sizes <= BIG_BUCKET
    for i, j in _small_run_pairs(starts[small], sizes[small]):
        keep = _keep(values[i], values[j], combo[i], plan, first)
        found_a.append(values[i][keep]), found_b.append(values[j][keep])
    for start, size in zip(starts[~small], sizes[~small]):
        run = values[start:start + size]
        i, j = hamming.distinct_pairs(run, plan.radius)
        keep = _keep(run[i], run[j], combo[start + i], plan, first)
        found_a.append(run[i][keep]), found_b.append(run[j][keep])
    return np.concatenate(found_a), np.concatenate(found_b), int(sizes.max())
