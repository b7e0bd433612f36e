"""SemDeDup (Abbas et al., 2023) on normalized embeddings, without Beam.

1. Spherical k-means (FAISS) on a deterministic sample of the pool: the rows whose keyed hash
   of (uid, seed) is smallest, so the sample does not depend on arrival order.
2. Each row goes to its nearest centroid (highest cosine).
3. Inside one cluster, rows are visited in keep-preference order (nearest the centroid, or
   best score); a row whose cosine to an already-kept row exceeds 1 - eps is dropped and
   names the closest such row. Kept rows are compared block by block, so memory is bounded by
   the cluster (its embeddings, kept rows and one block x 8192 similarity tile), never the pool.
"""
from __future__ import annotations

import hashlib

import numpy as np

from curate.dedup.decisions import DROP_DTYPE, drops
from curate.dedup.keep import rank
from curate.dedup.keys import canonical_order
from curate.dedup.reasons import SEMANTIC

SEMDEDUP_KEEP = ("nearest_centroid", "best_score")
ROWS_PER_CLUSTER = 10_000  # auto cluster count: SemDeDup used 50k clusters for 440M (~9k each)
MIN_POINTS_PER_CENTROID = 39  # below this FAISS warns that k-means is unreliable
BLOCK = 512
KEPT_TILE = 8192


def normalize(embeddings: np.ndarray) -> np.ndarray:
    e = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.where(norms > 0, norms, 1)


def sample_key(uid: str, seed: int) -> int:
    """A uniform 64-bit number per (uid, seed): the rows with the smallest are the training sample."""
    digest = hashlib.blake2b(f"semdedup-sample\x00{seed}\x00{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def cluster_count(pool: int, sample: int, requested: int) -> int:
    """The requested count, or pool / ROWS_PER_CLUSTER; never more than the sample supports."""
    wanted = requested if requested > 0 else -(-pool // ROWS_PER_CLUSTER)
    return max(1, min(wanted, sample // MIN_POINTS_PER_CENTROID if requested <= 0 else sample))


def gpus(faiss) -> int:
    """GPUs faiss-gpu sees on this worker (0 with faiss-cpu): the same code runs on both."""
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def train_centroids(sample: np.ndarray, k: int, seed: int, niter: int = 20) -> np.ndarray:
    """k unit centroids from spherical k-means on the (already normalized) sample rows."""
    import faiss  # lazily: only the global step trains

    sample = np.ascontiguousarray(sample, dtype=np.float32)
    if len(sample) == 0:
        return np.zeros((0, 0), np.float32)
    k = max(1, min(k, len(sample)))
    if k == 1:
        return normalize(sample.mean(axis=0, keepdims=True))
    kmeans = faiss.Kmeans(sample.shape[1], k, niter=niter, seed=seed, spherical=True,
                          verbose=False, min_points_per_centroid=1, gpu=gpus(faiss) > 0)
    kmeans.train(sample)
    return normalize(kmeans.centroids)


class CentroidIndex:
    """Nearest centroid by inner product (FAISS flat index), built once per worker."""

    def __init__(self, centroids: np.ndarray):
        import faiss

        self.index = faiss.IndexFlatIP(centroids.shape[1])
        if gpus(faiss):
            self.index = faiss.index_cpu_to_all_gpus(self.index)
        self.index.add(np.ascontiguousarray(centroids, dtype=np.float32))

    def assign(self, embeddings: np.ndarray) -> np.ndarray:
        _, nearest = self.index.search(normalize(embeddings), 1)
        return nearest[:, 0]


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
