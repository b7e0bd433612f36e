"""Exact and near duplicates in one step on one worker: union-find over three kinds of edge.

The graph no longer runs this (it holds every key of the pool at once): near_graph.py finds the
same relations by grouping and keeps by the two-hop rule (two_hop.py), which equals this on
every duplicate group of diameter <= 2. Kept as that rule's reference in tests and benchmarks.

Rows sharing a normalized URL, rows sharing image bytes (sha256) and rows whose pHashes are
within the radius are joined; each connected component keeps one row (keep.py) and every
other row names it. The reason a row gives is its relation to the keeper, checked directly:
same URL, else same bytes, else pHash with the true Hamming distance to the keeper (which can
exceed the radius when the component is a chain: those are counted as `chained`).
"""
from __future__ import annotations

import numpy as np

from curate.dedup import hamming
from curate.dedup.components import components, keepers, star_edges
from curate.dedup.decisions import DROP_DTYPE
from curate.dedup.keep import rank
from curate.dedup.keys import canonical_order
from curate.dedup.two_hop import REASONS, drop_records, relation


def _equal_value_edges(values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Star edges joining the rows (among `present`) that hold the same value."""
    rows = np.flatnonzero(present)
    if len(rows) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, inverse = np.unique(values[rows], return_inverse=True)
    head, member = star_edges(inverse)
    return rows[head], rows[member]


def find_duplicates(keys: np.ndarray, *, url: bool, sha: bool, phash_radius: int | None,
                    keep: str) -> tuple[np.ndarray, dict]:
    """Drop records (decisions.DROP_DTYPE) and facts for one pool of keys."""
    keys = keys[canonical_order(keys)]  # same rows in, same answer out, whatever the arrival order
    n = len(keys)
    edges_i, edges_j = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    facts: dict = {"rows": n, "methods": [m for m, on in (("url", url), ("sha256", sha),
                                                          ("phash", phash_radius is not None)) if on]}
    if url:
        i, j = _equal_value_edges(keys["url"], keys["url"] != b"")
        edges_i.append(i), edges_j.append(j)
    if sha:
        i, j = _equal_value_edges(keys["sha"], keys["sha"] != b"")
        edges_i.append(i), edges_j.append(j)
    if phash_radius is not None:
        hashed = np.flatnonzero(keys["has_phash"])
        i, j, _, plan = hamming.pairs_within(keys["phash"][hashed], phash_radius)
        edges_i.append(hashed[i]), edges_j.append(hashed[j])
        facts.update(phash_radius=phash_radius, phash_rows=len(hashed), index=plan.describe())
    labels = components(n, np.concatenate(edges_i), np.concatenate(edges_j))
    keeper = keepers(labels, rank(keys, keep))
    lost = np.flatnonzero(keeper != np.arange(n))
    if not len(lost):
        facts.update(dropped=0, groups=0, largest_group=1 if n else 0, chained=0)
        return np.zeros(0, DROP_DTYPE), facts
    won = keeper[lost]
    reasons, distance, chained = relation(keys[lost], keys[won], url, sha, phash_radius)
    sizes = np.bincount(labels, minlength=n)
    facts.update(
        dropped=int(len(lost)),
        dropped_by_reason={r.decode(): int((reasons == r).sum()) for r in REASONS},
        groups=int((sizes > 1).sum()),
        largest_group=int(sizes.max()),
        chained=int(chained.sum()),
    )
    return drop_records(keys[lost], keys[won], reasons, distance), facts
