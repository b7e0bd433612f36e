"""RealSyn's semantic cap without Beam: per cluster, keep all of at most T rows, else exactly T.

Which T stay is decided by rank, the order (keyed hash of (uid, seed), uid, batch id, pos):
the hash makes the choice uniform, the uid settles a hash collision, and (batch id, pos) is
input order (batch ids are "<file>-<first row>", positions keep their order when a stage drops
rows), which tells apart rows with the same uid whatever the bundle split. A cluster's cap is
the row of rank T: a row is kept iff its rank is at or before it. Only the T smallest rows and
a count per cluster are ever held, never the cluster.
"""
from __future__ import annotations

import hashlib

import numpy as np

RANK_DTYPE = np.dtype([
    ("key", "<u8"),  # keyed hash of (uid, seed)
    ("uid", "S32"),
    ("batch", "S32"),
    ("pos", "<i4"),
])
# one row per cluster: its size, and (where size > T) the rank-T row
CAP_DTYPE = np.dtype([("size", "<i8"), *RANK_DTYPE.descr])


def rank_key(uid: str, seed: int) -> int:
    digest = hashlib.blake2b(f"semantic-balance\x00{seed}\x00{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def ranks(uids: list[str], batch_id: str, positions, seed: int) -> np.ndarray:
    out = np.zeros(len(uids), dtype=RANK_DTYPE)
    out["key"] = [rank_key(u, seed) for u in uids]
    out["uid"] = [u.encode() for u in uids]
    out["batch"] = batch_id.encode()
    out["pos"] = positions
    return out


def rank_order(rows: np.ndarray) -> np.ndarray:
    return np.lexsort((rows["pos"], rows["batch"], rows["uid"], rows["key"]))


def smallest(parts: list[np.ndarray], t: int) -> np.ndarray:
    """The (at most) t rows of smallest rank among the parts, in rank order."""
    rows = np.concatenate(parts) if parts else np.zeros(0, RANK_DTYPE)
    return rows[rank_order(rows)[:t]]


def cap_of(size: int, first: np.ndarray, t: int) -> np.ndarray:
    """A cluster's CAP_DTYPE record from its size and its smallest-rank rows (at least t if size > t)."""
    record = np.zeros((), dtype=CAP_DTYPE)
    record["size"] = size
    if size > t:
        for name in RANK_DTYPE.names:
            record[name] = first[t - 1][name]
    return record


def at_or_before(rows: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Row-wise: rank of rows[i] <= rank of limit[i] (lexicographic over RANK_DTYPE's fields)."""
    before = np.zeros(len(rows), dtype=bool)
    equal = np.ones(len(rows), dtype=bool)
    for name in RANK_DTYPE.names:
        a, b = rows[name], limit[name]
        before |= equal & (a < b)
        equal &= a == b
    return before | equal


def keep(rows: np.ndarray, clusters: np.ndarray, caps: np.ndarray, t: int) -> np.ndarray:
    """Whether each row (RANK_DTYPE, in cluster `clusters[i]`) survives its cluster's cap."""
    mine = caps[clusters]
    return (mine["size"] <= t) | at_or_before(rows, mine)
