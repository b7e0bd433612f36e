"""Set algebra on subsets: intersection (--and), union (--or), difference (--not).

Inputs are sorted DataComp arrays, read memory-mapped in chunks: for each chunk of the first
array only the matching range of the second is loaded (found by binary search), so memory is
two chunks whatever the sizes. The result is sorted and unique (a set), as DataComp writes.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

from curate.errors import UsageError
from curate.io import files as fs
from curate.subset.format import npy_header, contains, keys_to_pairs, open_subset, pairs_to_keys

OPS = ("and", "or", "not")
CHUNK = 1 << 21


def _key_at(pairs: np.ndarray, i: int) -> bytes:
    return pairs_to_keys(pairs[i:i + 1])[0]


def search(pairs: np.ndarray, key, side: str = "right") -> int:
    """np.searchsorted on a sorted structured array, dtype-agnostic, without converting it whole."""
    lo, hi = 0, len(pairs)
    while lo < hi:
        mid = (lo + hi) // 2
        k = _key_at(pairs, mid)
        if k < key or (side == "right" and k == key):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _chunks(a: np.ndarray, b: np.ndarray, op: str):
    """Yield sorted result keys, chunk by chunk."""
    b_at = 0
    for start in range(0, len(a), CHUNK):
        ak = pairs_to_keys(a[start:start + CHUNK])
        last = start + CHUNK >= len(a)
        b_end = len(b) if (last and op == "or") else search(b, ak[-1], "right")
        bk = pairs_to_keys(b[b_at:b_end])
        b_at = b_end
        if op == "and":
            yield ak[contains(bk, ak)]
        elif op == "not":
            yield ak[~contains(bk, ak)]
        else:
            yield np.union1d(ak, bk)
    if not len(a) and op == "or":
        for start in range(0, len(b), CHUNK):
            yield pairs_to_keys(b[start:start + CHUNK])


def combine_two(a: np.ndarray, b: np.ndarray, op: str, to: str) -> int:
    """Write `a op b` to `to`; returns the number of uids written."""
    body = tempfile.NamedTemporaryFile(prefix=".subset-", dir=os.path.dirname(os.path.abspath(to)), delete=False)
    count, previous = 0, None
    try:
        with body:
            for keys in _chunks(a, b, op):
                keys = np.unique(keys)  # a repeated uid inside a chunk
                if previous is not None and len(keys) and keys[0] == previous:
                    keys = keys[1:]  # ... or across a chunk boundary
                if len(keys):
                    body.write(keys_to_pairs(keys).tobytes())
                    count += len(keys)
                    previous = keys[-1]
        with fs.atomic_write(to) as out, open(body.name, "rb") as f:
            out.write(npy_header(count))
            shutil.copyfileobj(f, out, 1 << 22)
    finally:
        os.unlink(body.name)
    return count


def combine(paths: list[str], op: str, to: str) -> dict:
    """Fold `op` over the subsets left to right (`a --not b c` = a minus b minus c)."""
    if op not in OPS:
        raise UsageError(f"combine: unknown operation {op!r} (one of --and, --or, --not)")
    if len(paths) < 2:
        raise UsageError("combine: needs at least two subset files")
    arrays = [open_subset(p, flag="combine") for p in paths]  # every input checked before any work
    sizes = {p: len(a) for p, a in zip(paths, arrays)}
    current = arrays[0]
    tmp = None
    try:
        for i, other in enumerate(arrays[1:]):
            target = to if i == len(arrays) - 2 else os.path.join(
                os.path.dirname(os.path.abspath(to)), f".subset-fold-{i}-{os.getpid()}.npy")
            count = combine_two(current, other, op, target)
            if tmp:
                os.unlink(tmp)
            tmp = target if target != to else None
            current = np.load(target, mmap_mode="r")
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return {"op": op, "inputs": sizes, "output": to, "uids": count}

