"""SemDeDup (Abbas et al., 2023) on normalized embeddings, without Beam.

1. Spherical k-means on a deterministic sample of the pool (curate/clusters: the rows whose
   keyed hash of (uid, seed) is smallest, so the sample does not depend on arrival order).
2. Each row goes to its nearest centroid (highest cosine).
3. Inside one cluster, rows are visited in keep-preference order (nearest the centroid, or
   best score); a row whose cosine to an already-kept row exceeds 1 - eps is dropped and
   names the closest such row. Kept rows are compared block by block, so memory is bounded by
   the cluster (its embeddings, kept rows and one block x 8192 similarity tile), never the pool.
"""
from __future__ import annotations

import numpy as np

from curate.clusters.kmeans import normalize
from curate.dedup.decisions import DROP_DTYPE, drops
from curate.dedup.keep import rank
from curate.dedup.keys import canonical_order
from curate.dedup.reasons import SEMANTIC

SEMDEDUP_KEEP = ("nearest_centroid", "best_score")
ROWS_PER_CLUSTER = 10_000  # auto cluster count: SemDeDup used 50k clusters for 440M (~9k each)
BLOCK = 512
KEPT_TILE = 8192


def dedup_cluster(keys: np.ndarray, embeddings: np.ndarray, centroid: np.ndarray, eps: float,
                  keep: str) -> np.ndarray:
    """Drop records for the rows of one cluster that are within eps of an already-kept row."""
    order = canonical_order(keys)
    keys, e = keys[order], normalize(embeddings[order])
    closeness = e @ np.asarray(centroid, dtype=np.float32)
    prefer = closeness if keep == "nearest_centroid" else None
    visit = np.argsort(rank(keys, "best_score" if keep == "best_score" else "first_uid", prefer))
    threshold = np.float32(1.0 - eps)
    kept = np.empty((len(keys), e.shape[1]), dtype=np.float32)  # kept rows' embeddings, in visit order
    kept_rows = np.empty(len(keys), dtype=np.int64)
    n_kept = 0
    lost, lost_to = [], []
    for start in range(0, len(visit), BLOCK):
        rows = visit[start:start + BLOCK]
        block = e[rows]
        best_cos, best_at = _closest_kept(block, kept[:n_kept])
        best_row = np.where(best_at >= 0, kept_rows[np.maximum(best_at, 0)], -1)
        is_kept = ~(best_cos > threshold)
        within = block @ block.T
        earlier_close = np.triu(within > threshold, 1)  # [a, b]: a visited before b, too close
        for b in np.flatnonzero(earlier_close.any(axis=0)):  # in visit order: earlier fates are final
            before = np.flatnonzero(earlier_close[:b, b] & is_kept[:b])
            if len(before):
                a = before[np.argmax(within[before, b])]
                is_kept[b] = False
                if within[a, b] > best_cos[b]:
                    best_cos[b], best_row[b] = within[a, b], rows[a]
        gone = ~is_kept
        lost.append(rows[gone]), lost_to.append(best_row[gone])
        n_new = int(is_kept.sum())
        kept[n_kept:n_kept + n_new] = block[is_kept]
        kept_rows[n_kept:n_kept + n_new] = rows[is_kept]
        n_kept += n_new
    if not lost:
        return np.zeros(0, DROP_DTYPE)
    lost_rows, winners = np.concatenate(lost), np.concatenate(lost_to)
    # the reported distance per pair in float64: the same whatever the tiling of the products
    cos = np.einsum("ij,ij->i", e[lost_rows].astype(np.float64), e[winners].astype(np.float64))
    return drops(keys, lost_rows, SEMANTIC.encode(), winners, (1.0 - cos).astype(np.float32))


def _closest_kept(block: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Highest cosine of each block row to the kept rows, and which kept row it is (-1: none)."""
    best_cos = np.full(len(block), -np.inf, dtype=np.float32)
    best_at = np.full(len(block), -1, dtype=np.int64)
    for start in range(0, len(kept), KEPT_TILE):
        sims = block @ kept[start:start + KEPT_TILE].T
        at = sims.argmax(axis=1)
        cos = sims[np.arange(len(block)), at]
        better = cos > best_cos
        best_cos[better], best_at[better] = cos[better], start + at[better]
    return best_cos, best_at
