"""One block list on storage, looked up without loading it: exact by binary search, and within
a Hamming radius by multi-index hashing.

Files (NumPy .npy, memory-mapped by every reader, so the worker processes of a machine share
one copy in the page cache):
- `rows.npy`: the distinct entries sorted, N x width uint8 (16 bytes an MD5, 32 a PDQ). An
  exact lookup is a binary search (np.searchsorted on the rows viewed as width-byte strings).
- `tables.npy` + `offsets.npy` (pdq / phash lists checked with a radius): the hash cut into
  16-bit chunks (16 for PDQ, 4 for pHash); per chunk, the row numbers ordered by that chunk's
  value (k x N uint32) and where each of the 65,536 values starts (k x 65,537 uint32).

Why the radius search is exact (not sampled): cut a 256-bit hash into k = 16 chunks; if two
hashes differ in at most r bits, at least one chunk differs in at most floor(r / k) bits
(pigeonhole: otherwise every chunk differs in floor(r / k) + 1 or more, r + 1 or more in all).
So every entry within r shares, in some chunk, a value within floor(r / k) bits of the
query's: probing each chunk's values within floor(r / k) bits (r = 31: the value and its 16
one-bit flips, 17 probes a chunk, 272 in all) finds every candidate, and the full distance of
each candidate decides. `tests/test_blocklist.py` checks it against brute force.
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import tempfile
import threading

import numpy as np
from apache_beam.io.filesystems import FileSystems

from curate.io import files as fs

CHUNK_BITS = 16
CHUNK_VALUES = 1 << CHUNK_BITS
FORMAT_VERSION = 1
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def hamming(rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Bits differing between each of N x width rows and one width-byte query."""
    diff = np.bitwise_xor(rows, query)
    if hasattr(np, "bitwise_count") and diff.shape[1] % 8 == 0:  # NumPy >= 2: popcount in C
        return np.bitwise_count(diff.view(np.uint64)).sum(axis=1, dtype=np.int64)
    return _POPCOUNT[diff].sum(axis=1)
_LOCAL: dict[str, str] = {}
_LOCAL_LOCK = threading.Lock()


def chunk_values(rows: np.ndarray) -> np.ndarray:
    """k x N big-endian 16-bit chunk values of N x width rows."""
    pairs = rows.reshape(len(rows), -1, 2).astype(np.uint16)
    return ((pairs[:, :, 0] << 8) | pairs[:, :, 1]).T


@functools.lru_cache(maxsize=None)
def flip_masks(bits: int) -> np.ndarray:
    """Every 16-bit mask with at most `bits` bits set (the probes around a chunk value)."""
    masks = [0]
    for n in range(1, bits + 1):
        masks.extend(sum(1 << b for b in combo) for combo in itertools.combinations(range(CHUNK_BITS), n))
    return np.array(masks, dtype=np.uint16)


def _save(folder: str, name: str, array: np.ndarray) -> None:
    with fs.atomic_write(fs.join(folder, name)) as f:
        np.save(f, array, allow_pickle=False)


def write_index(folder: str, rows: np.ndarray, near: bool, meta: dict) -> None:
    """Write one list's files; `meta.json` last, so a folder that has it is complete."""
    _save(folder, "rows.npy", rows)
    if near:
        chunks = chunk_values(rows)
        tables = np.empty(chunks.shape, dtype=np.uint32)
        offsets = np.zeros((len(chunks), CHUNK_VALUES + 1), dtype=np.uint32)  # rows < 2**32
        for c, values in enumerate(chunks):
            tables[c] = np.argsort(values, kind="stable")
            offsets[c, 1:] = np.cumsum(np.bincount(values, minlength=CHUNK_VALUES))
        _save(folder, "tables.npy", tables)
        _save(folder, "offsets.npy", offsets)
    fs.write_bytes(fs.join(folder, "meta.json"), json.dumps({**meta, "format": FORMAT_VERSION,
                                                             "near": near}).encode())


def is_complete(folder: str) -> bool:
    path = fs.join(folder, "meta.json")
    if not FileSystems.exists(path):
        return False
    return json.loads(fs.read_bytes(path)).get("format") == FORMAT_VERSION


def _local(folder: str) -> str:
    """A local folder with the files (a remote one is copied once per process)."""
    if "://" not in folder:
        return folder
    with _LOCAL_LOCK:
        if folder not in _LOCAL:
            target = tempfile.mkdtemp(prefix="curate-blocklist-")
            for path in fs.list_dir(folder):
                with FileSystems.open(path) as src, open(os.path.join(target, os.path.basename(path)), "wb") as dst:
                    shutil.copyfileobj(src, dst, 2**22)
            _LOCAL[folder] = target
        return _LOCAL[folder]


def _mapped(path: str) -> np.ndarray:
    """The file memory-mapped, as a plain ndarray (np.memmap's indexing costs more per call)."""
    return np.load(path, mmap_mode="r").view(np.ndarray)


class ListIndex:
    """One list's files, memory-mapped."""

    def __init__(self, folder: str):
        local = _local(folder)
        self.rows = _mapped(os.path.join(local, "rows.npy"))
        self.width = self.rows.shape[1]
        self.keys = self.rows.view(f"S{self.width}").reshape(-1)
        self.tables = self.offsets = None
        if os.path.exists(os.path.join(local, "tables.npy")):
            self.tables = _mapped(os.path.join(local, "tables.npy"))
            self.offsets = _mapped(os.path.join(local, "offsets.npy"))

    def __len__(self) -> int:
        return len(self.rows)

    def contains(self, queries: np.ndarray) -> np.ndarray:
        """Whether each of M x width query rows is on the list."""
        if not len(self.keys):
            return np.zeros(len(queries), dtype=bool)
        wanted = np.ascontiguousarray(queries, dtype=np.uint8).view(f"S{self.width}").reshape(-1)
        at = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return self.keys[at] == wanted

    def nearest(self, query: np.ndarray, radius: int) -> int | None:
        """The smallest Hamming distance from `query` (width uint8) to an entry, if <= radius."""
        query = np.asarray(query, dtype=np.uint8).reshape(1, -1)
        if radius == 0 or self.tables is None or not len(self.rows):
            return 0 if self.contains(query)[0] else None
        chunks = chunk_values(query)[:, 0]
        probes = (flip_masks(radius // len(chunks))[None, :] ^ chunks[:, None]).astype(np.int64)  # k x P
        which = np.broadcast_to(np.arange(len(chunks))[:, None], probes.shape)
        starts = self.offsets[which, probes].astype(np.int64).ravel()
        lengths = self.offsets[which, probes + 1].astype(np.int64).ravel() - starts
        if not lengths.any():
            return None
        # every probed bucket's slice of its chunk's table, gathered in one index array
        starts += (which.ravel() * len(self.rows))
        first = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        candidates = self.tables.reshape(-1)[first + np.arange(lengths.sum())]  # repeats are harmless
        distances = hamming(self.rows[candidates], query)
        best = int(distances.min())
        return best if best <= radius else None
