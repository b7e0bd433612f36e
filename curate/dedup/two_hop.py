"""The keeper rule of exact and pHash dedup, computable by grouping: best within two hops.

Two samples are related when they share a normalized URL, share image bytes (sha256), have the
same pHash, or have pHashes within the radius. With `best(S)` the first of S in keep order
(keep.py: --dedup_keep), for every sample u and its closed neighbourhood N[u] (u and every
sample related to it):

    m1(u) = best(N[u])          m2(u) = best{m1(v) : v in N[u]}

u is kept iff m2(u) = u; otherwise it is dropped naming m2(u) as its keeper, with the reason
its relation to that keeper: same URL, else same bytes, else pHash with their true Hamming
distance (above the radius when the keeper is two hops away: counted as `chained`).

Where every duplicate group has diameter <= 2 (a pair, a star, a clique, a chain of three, a
URL group whose rows also share bytes), each member reaches the group's best in two hops, so
the group keeps exactly its best and every other member names it: the result of one global
union-find (tests/dedup_reference.py). Longer chains differ. On a - b - c - d with keep order a, d, b, c:
m1 = (a, a, d, d), m2 = (a, a, a, d): b and c name a, and d is kept too (three hops from a),
where union-find keeps a alone. On a - b - c - d - e with keep order e, c, then the rest:
a and b name c, c names e (two hops), d names e: a's named keeper c is itself dropped. In
general the best sample of each group is kept, no two kept samples are related (a kept u is
m1(v) of each neighbour v, so no neighbour is kept), and a sample whose best is more than two
hops away may survive.

Each hop is a grouping: rows by value (URL digest, sha256 digest, pHash), pHash values along
their edges, candidates by row; a hop sends (row, candidate) records, and only rows with at
least one relation take part after the first grouping.
"""
from __future__ import annotations

import numpy as np

from curate.dedup import hamming
from curate.dedup.decisions import DROP_DTYPE
from curate.dedup.keys import KEY_DTYPE
from curate.dedup.reasons import PHASH, SHA256, URL

# a row, its best candidate so far, and the kinds of value (HUB_BITS) it shares with another row
PAIR_DTYPE = np.dtype([("row", KEY_DTYPE), ("x", KEY_DTYPE), ("hubs", "u1")])
HUB_BITS = {"url": 1, "sha": 2, "phash": 4}
VALUE_DTYPE = np.dtype([("value", "<u8"), ("rec", KEY_DTYPE)])  # a pHash value and a row or candidate
EDGE_DTYPE = np.dtype([("a", "<u8"), ("b", "<u8")])  # distinct pHash values within the radius
REASONS = (URL.encode(), SHA256.encode(), PHASH.encode())  # the drop record's detail, by relation


def pairs(rows: np.ndarray, xs: np.ndarray, hubs: int = 0) -> np.ndarray:
    out = np.empty(len(rows), dtype=PAIR_DTYPE)
    out["row"], out["x"], out["hubs"] = rows, xs, hubs
    return out


def _columns(column: np.ndarray) -> list[np.ndarray]:
    """A key column as numeric columns (least significant first) that sort the same: bytes
    values as big-endian 64-bit words (numpy compares them bytewise), numbers as they are."""
    if column.dtype.kind != "S":
        return [column]
    raw = np.ascontiguousarray(column)
    words = raw.view(">u8").reshape(len(raw), raw.dtype.itemsize // 8).T[::-1]
    return [w for w in words if len(w) and not (w == w[0]).all()] or [words[-1]]  # constant words order nothing


def preference(cands: np.ndarray, keep: str) -> list[np.ndarray]:
    """keep.rank's order as lexsort columns (least significant first): numbers sort faster than
    the 32-byte uids and batch ids they stand for."""
    columns = [cands["pos"], *_columns(cands["batch"]), *_columns(cands["uid"])]
    if keep == "best_score":
        columns.append(-np.nan_to_num(cands["score"].astype(np.float64), nan=-np.inf))
    elif keep != "first_uid":
        raise ValueError(f"unknown keep rule {keep!r}")
    return columns


def best_of_groups(groups: list[np.ndarray], cands: np.ndarray, keep: str) -> tuple[np.ndarray, np.ndarray]:
    """(index of each group's best candidate, group number of each element); `groups` are key
    columns, primary first. Groups are numbered in ascending key order."""
    group_columns = [c for column in reversed(groups) for c in _columns(column)]
    order = np.lexsort((*preference(cands, keep), *group_columns))
    starts = np.zeros(len(order), dtype=bool)
    starts[:1] = True
    for column in group_columns:
        ordered = column[order]
        starts[1:] |= ordered[1:] != ordered[:-1]
    group = np.empty(len(order), dtype=np.int64)
    group[order] = np.cumsum(starts) - 1
    return order[starts], group


def best_per_row(messages: np.ndarray, keep: str) -> np.ndarray:
    """One pair per row: the best candidate any message offered it, and every kind it came by."""
    best, group = best_of_groups([messages["row"]["batch"], messages["row"]["pos"]], messages["x"], keep)
    out = messages[best]
    hubs = np.zeros(len(best), dtype=np.uint8)
    np.bitwise_or.at(hubs, group, messages["hubs"])
    out["hubs"] = hubs
    return out


def relation(lost: np.ndarray, won: np.ndarray, url: bool, sha: bool,
             radius: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reason (url | sha256 | phash), distance and `chained` mask of rows dropped for keepers."""
    same_url = url & (lost["url"] != b"") & (lost["url"] == won["url"])
    same_bytes = ~same_url & sha & (lost["sha"] != b"") & (lost["sha"] == won["sha"])
    bits = hamming.popcount(lost["phash"] ^ won["phash"])
    reasons = np.where(same_url, REASONS[0], np.where(same_bytes, REASONS[1], REASONS[2]))
    distance = np.where(same_url | same_bytes, 0, bits).astype(np.float32)
    return reasons, distance, (reasons == REASONS[2]) & (distance > (radius or 0))


def drop_records(lost: np.ndarray, won: np.ndarray, reasons, distance) -> np.ndarray:
    out = np.zeros(len(lost), dtype=DROP_DTYPE)
    out["batch"], out["pos"], out["keeper"] = lost["batch"], lost["pos"], won["uid"]
    out["reason"], out["distance"] = reasons, distance
    return out


def decide(final: np.ndarray, url: bool, sha: bool, radius: int | None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Drop records for the rows whose m2 is another row, their keepers' records, and counts."""
    row, x = final["row"], final["x"]
    lost = np.flatnonzero((row["batch"] != x["batch"]) | (row["pos"] != x["pos"]))
    reasons, distance, chained = relation(row[lost], x[lost], url, sha, radius)
    counts = {"dropped": len(lost), "chained": int(chained.sum()),
              "dropped_by_reason": {r.decode(): int((reasons == r).sum()) for r in REASONS}}
    return drop_records(row[lost], x[lost], reasons, distance), x[lost], counts
