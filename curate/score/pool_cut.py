"""The exact score of the k-th best sample of the whole pool, in two small global passes.

`--clip_keep_fraction f` keeps the k = floor(f * n + 1/2) best of the n samples that reach the
cut (plus any that tie with the k-th score). The cut is found over the whole pool, never per
bundle, without sorting or collecting scores: a float32 score maps to a uint32 key whose order is
the scores' order; pass 1 counts keys by their high 16 bits (a 65,536-bin histogram per batch,
summed), which finds the bin holding the k-th best; pass 2 counts, inside that bin only, the low
16 bits, which finds the exact key. Counts are integers summed in any order, so the threshold is
the same bit for bit on any runner, worker count and bundle split. Error: none (exact).

Behind a cascade's prefilter the fraction stays one of the pool before the prefilter: `pool`
(a one-int PCollection) then gives n while the histograms hold only the survivors, so the
cascade keeps as many samples as the run without a prefilter would (at most every survivor).
"""
from __future__ import annotations

import math

import apache_beam as beam
import numpy as np

from curate.score.ranks import keep_count, locate_from_top as _locate

BINS = 1 << 16


def sort_keys(scores: np.ndarray) -> np.ndarray:
    """uint32 keys ordered like the float32 scores (NaNs must be removed first)."""
    bits = np.ascontiguousarray(scores, dtype=np.float32).view(np.uint32)
    negative = (bits >> 31).astype(bool)
    return np.where(negative, ~bits, bits | np.uint32(0x80000000)).astype(np.uint32)


def key_to_score(key: int) -> float:
    key = np.uint32(key)
    bits = key & np.uint32(0x7FFFFFFF) if key >> 31 else ~key
    return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])


class _Histograms(beam.CombineFn):
    """{role: bin ids} per batch -> {role: counts per bin} over the pool."""

    def __init__(self, roles: tuple[str, ...]):
        self.roles = roles

    def create_accumulator(self):
        return {role: np.zeros(BINS, dtype=np.int64) for role in self.roles}

    def add_input(self, acc, bins):
        for role, ids in bins.items():
            if len(ids) > 4096:
                acc[role] += np.bincount(ids, minlength=BINS)
            elif len(ids):
                np.add.at(acc[role], ids, 1)  # small batches: no 65,536-bin temporary
        return acc

    def merge_accumulators(self, accs):
        accs = iter(accs)
        total = next(accs)
        for acc in accs:
            for role in self.roles:
                total[role] += acc[role]
        return total

    def extract_output(self, acc):
        return acc


def _high_bins(keys_by_role: dict) -> dict:
    return {role: (keys >> 16).astype(np.int64) for role, keys in keys_by_role.items()}


def _low_bins(keys_by_role: dict, located: dict) -> dict:
    out = {}
    for role, keys in keys_by_role.items():
        where = located[role]
        if where is None:
            continue
        out[role] = (keys[(keys >> 16) == where["bin"]] & 0xFFFF).astype(np.int64)
    return out


def _pool_and_keep(counts: np.ndarray, fraction: float, pool: int | None) -> tuple[int, int]:
    reached = int(counts.sum())
    pool = reached if pool is None else pool
    return pool, min(reached, keep_count(fraction, pool))


def _pick_bins(high: dict, fractions: dict, pool: int | None = None) -> dict:
    located = {}
    for role, counts in high.items():
        _, k = _pool_and_keep(counts, fractions[role], pool)
        located[role] = None if k == 0 else dict(zip(("bin", "rank"), _locate(counts, k)))
    return located


def _finish(low: dict, high: dict, located: dict, fractions: dict, pool: int | None = None) -> dict:
    cuts = {}
    for role, fraction in fractions.items():
        n, k = _pool_and_keep(high[role], fraction, pool)
        fact = {"keep_fraction": fraction, "pool": n, "keep": k}
        if pool is not None:
            fact["reached"] = int(high[role].sum())  # the prefilter's survivors
        if located[role] is None:  # nothing to keep (or an empty pool)
            fact.update(threshold=math.inf, at_or_above=0)
        else:
            b = located[role]["bin"]
            c, _ = _locate(low[role], located[role]["rank"])
            fact.update(threshold=key_to_score((b << 16) | c),
                        at_or_above=int(high[role][b + 1:].sum() + low[role][c:].sum()))
        cuts[role] = fact
    return cuts


class PoolCut(beam.PTransform):
    """{role: float32 scores} per batch -> one dict {role: {threshold, pool, keep, at_or_above}}."""

    def __init__(self, fractions: dict[str, float], pool: beam.PCollection | None = None):
        super().__init__()
        self.fractions = dict(fractions)
        self.pool = pool

    def expand(self, scores):
        roles = tuple(self.fractions)
        keys = scores | "SortKeys" >> beam.Map(
            lambda by_role: {r: sort_keys(by_role[r]) for r in roles})
        high = keys | "HighBits" >> beam.Map(_high_bins) | "CountHigh" >> beam.CombineGlobally(_Histograms(roles))
        pool = [] if self.pool is None else [beam.pvalue.AsSingleton(self.pool)]
        located = high | "PickBins" >> beam.Map(_pick_bins, self.fractions, *pool)
        low = (keys | "LowBits" >> beam.Map(_low_bins, beam.pvalue.AsSingleton(located))
               | "CountLow" >> beam.CombineGlobally(_Histograms(roles)))
        return low | "Threshold" >> beam.Map(
            _finish, beam.pvalue.AsSingleton(high), beam.pvalue.AsSingleton(located), self.fractions, *pool)
