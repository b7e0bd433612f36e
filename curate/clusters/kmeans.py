"""Spherical k-means without Beam: the keyed training sample, the cluster count, the centroids,
and the nearest centroid of a row.

The training sample is the rows whose keyed hash of (uid, seed) is smallest, so it does not
depend on arrival order or bundle split; every stage that clusters uses this key and one rule
for how many clusters a sample supports (FAISS calls k-means unreliable below 39 points per
centroid), so a pool clusters the same way wherever it is clustered.
"""
from __future__ import annotations

import hashlib

import numpy as np

MIN_POINTS_PER_CENTROID = 39  # below this FAISS warns that k-means is unreliable


def sample_key(uid: str, seed: int) -> int:
    """A uniform 64-bit number per (uid, seed): the rows with the smallest are the training sample."""
    digest = hashlib.blake2b(f"semdedup-sample\x00{seed}\x00{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def cluster_count(pool: int, sample: int, requested: int, rows_per_cluster: int) -> int:
    """`requested` (0: one cluster per `rows_per_cluster` rows of the pool), never more than the
    training sample supports (MIN_POINTS_PER_CENTROID rows each), at least one."""
    wanted = requested if requested > 0 else -(-pool // rows_per_cluster)
    return max(1, min(wanted, sample // MIN_POINTS_PER_CENTROID))


def normalize(embeddings: np.ndarray) -> np.ndarray:
    e = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.where(norms > 0, norms, 1)


def gpus(faiss) -> int:
    """GPUs faiss-gpu sees on this worker (0 with faiss-cpu): the same code runs on both."""
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def train_centroids(sample: np.ndarray, k: int, seed: int, niter: int = 20) -> np.ndarray:
    """k unit centroids from spherical k-means on the sample rows (normalized here)."""
    import faiss  # lazily: only the global step trains

    sample = np.ascontiguousarray(normalize(sample), dtype=np.float32)
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
    """Nearest centroid by inner product (FAISS flat index)."""

    def __init__(self, centroids: np.ndarray):
        import faiss

        self.index = faiss.IndexFlatIP(centroids.shape[1])
        if gpus(faiss):
            self.index = faiss.index_cpu_to_all_gpus(self.index)
        self.index.add(np.ascontiguousarray(centroids, dtype=np.float32))

    def assign(self, embeddings: np.ndarray) -> np.ndarray:
        _, nearest = self.index.search(normalize(embeddings), 1)
        return nearest[:, 0]


_INDEX: list = [None, None]  # (centroids, its index): one per worker process, per side input value


def nearest(embeddings: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid of each row; the index is built once per worker for a side input's value."""
    if _INDEX[0] is not centroids:
        _INDEX[:] = [centroids, CentroidIndex(centroids)]
    return _INDEX[1].assign(embeddings)
