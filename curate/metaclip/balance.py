"""MetaCLIP balancing: p_e = min(1, t / count_e); each matched entry selects independently.

The reference draws with an unseeded RNG; here each (uid, entry, seed) maps to a fixed
uniform number in [0, 1) (splitmix64), so the kept set is the same on any runner, worker
count or bundle split, and the keep probability is still 1 - prod(1 - p_e).
"""
from __future__ import annotations

import numpy as np

METACLIP_T = 20_000  # the paper's t for its 1.6B-caption pool
METACLIP_POOL = 1_600_000_000
MIN_AUTO_T = 2.0

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uid_key(uid: str) -> int:
    return int(uid[:16], 16)


def uid_keys(uids: list[str]) -> np.ndarray:
    """uid_key of many uids at once: their first 16 hex digits read as big-endian uint64."""
    if not uids:
        return np.zeros(0, dtype=np.uint64)
    return np.frombuffer(bytes.fromhex("".join(u[:16] for u in uids)), dtype=">u8").astype(np.uint64)


def uniforms(uid_keys: np.ndarray, entry_ids: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic U[0,1) per (uid, entry, seed)."""
    with np.errstate(over="ignore"):
        z = _splitmix64(uid_keys.astype(np.uint64) ^ _splitmix64(np.uint64(seed) + entry_ids.astype(np.uint64)))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def auto_t(pool_size: int) -> float:
    """MetaCLIP's t scaled to this pool's size: 20k for 1.6B captions, at least MIN_AUTO_T."""
    return max(MIN_AUTO_T, METACLIP_T * pool_size / METACLIP_POOL)


def entry_probabilities(counts: np.ndarray, t: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.minimum(1.0, t / np.maximum(counts, 1)).astype(np.float64)


def select(uid_keys: np.ndarray, id_lists: list[list[int]], probabilities: np.ndarray,
           seed: int) -> tuple[np.ndarray, np.ndarray]:
    """For each caption: kept?, and its keep probability 1 - prod(1 - p_e)."""
    lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
    flat_ids = np.fromiter((i for ids in id_lists for i in ids), dtype=np.int64, count=int(lengths.sum()))
    return select_flat(uid_keys, lengths, flat_ids, probabilities, seed)


def select_flat(uid_keys: np.ndarray, lengths: np.ndarray, flat_ids: np.ndarray,
                probabilities: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`select` on the captions' entry ids laid end to end (`lengths[k]` ids for caption k)."""
    n = len(lengths)
    keys = np.repeat(np.asarray(uid_keys, dtype=np.uint64), lengths)
    p = probabilities[flat_ids]
    chosen = uniforms(keys, flat_ids, seed) < p
    owner = np.repeat(np.arange(n), lengths)
    kept = np.zeros(n, dtype=bool)
    np.logical_or.at(kept, owner, chosen)
    log_miss = np.zeros(n)
    with np.errstate(divide="ignore"):
        np.add.at(log_miss, owner, np.log1p(-np.minimum(p, 1.0)))
    return kept, 1.0 - np.exp(log_miss)
