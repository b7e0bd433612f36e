"""Which part of a keyed step a value goes to: a mixed 64-bit hash modulo a part count.

The engine groups small numpy arrays by (step, part), never all keys at once (dedup's
near-duplicate steps, the writer's duplicate rows). The part count follows the pool (one global
count of rows, a side input), so a part holds about `per_part` values whatever the pool's size: a worker's memory is bounded by one part, and a batch sends
one array per part it touches rather than one element per row.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

ROWS_PER_PART = 250_000  # ~55 MB of (row, candidate) records: what one grouped step holds
CHUNK_BYTES = 1 << 20  # elements of about 1 MB: FnApiRunner moves many small ones faster than one huge

_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def part_count(n: int, per_part: int) -> int:
    return max(1, -(-int(n) // int(per_part)))


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads any 64-bit values (band keys, pHashes) over all bits."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def words(column: np.ndarray) -> np.ndarray:
    """A fixed-width bytes column (S16 digests, S32 batch ids) as (n, width / 8) uint64 words."""
    raw = np.ascontiguousarray(column)
    return raw.view(np.uint64).reshape(len(raw), raw.dtype.itemsize // 8)


def hash_bytes(column: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each fixed-width bytes value, the same on every worker."""
    acc = np.zeros(len(column), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for word in words(column).T:
            acc = mix(acc * _GOLDEN + word)
    return acc


def _chunks(array: np.ndarray) -> Iterator[np.ndarray]:
    step = max(1, CHUNK_BYTES // max(1, array.dtype.itemsize))
    for start in range(0, len(array), step):
        yield array[start:start + step]


def split(parts: np.ndarray, array: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(part, rows of `array` in it) for every part present, in chunks of about CHUNK_BYTES."""
    if len(parts) and (parts == parts[0]).all():  # one part (a small pool): no gather
        yield from ((int(parts[0]), chunk) for chunk in _chunks(array))
        return
    order = np.argsort(parts, kind="stable")
    sorted_parts = parts[order]
    cuts = np.flatnonzero(sorted_parts[1:] != sorted_parts[:-1]) + 1
    for rows in np.split(order, cuts) if len(order) else ():
        yield from ((int(parts[rows[0]]), chunk) for chunk in _chunks(array[rows]))
