"""Rank arithmetic of the pool-fraction cut, without Beam: how many a fraction keeps, and which
bin of a histogram (counted from the top) holds the k-th best.

The scoring stage's PoolCut (pool_cut.py) and the ledger re-cut (curate/subset/cut.py) both
use it, so a fraction keeps the same k of a pool in a run and in a re-cut of its ledger.
"""
from __future__ import annotations

import math

import numpy as np


def keep_count(fraction: float, pool: int) -> int:
    return min(pool, math.floor(fraction * pool + 0.5))


def locate_from_top(counts: np.ndarray, k: int) -> tuple[int, int]:
    """(bin holding the k-th largest value, its rank inside the bin counted from the top, 1-based),
    for counts per bin in ascending order of value."""
    at_or_above = np.cumsum(counts[::-1])[::-1]  # at_or_above[b] = values in bins >= b
    b = int(np.flatnonzero(at_or_above >= k)[-1])
    return b, k - int(at_or_above[b] - counts[b])
