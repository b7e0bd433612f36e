"""DataComp's image-based filter: keep samples whose image falls in a k-means cluster that some
target image (e.g. ImageNet train) is nearest to.

Global step on small keyed values: a deterministic sample of the pool's fp16 image embeddings
(the `train_size` smallest keyed hashes of (uid, seed), the same on any bundle split) trains a
spherical k-means (FAISS, fixed seed); the targets' nearest centroids mark the clusters to keep.
The centroids reach the per-sample decision as a side input. DataComp used 100k clusters on
its pool; here k is also capped at train_size / 39 (FAISS's minimum points per centroid).
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from curate.errors import UsageError
from curate.io import files as fs
from curate.sample import SampleBatch
from curate.score.embeddings import vector_name
from curate.score.names import CLUSTER, OFF_TARGET  # noqa: F401  (the filter's column and drop detail)

MIN_POINTS_PER_CLUSTER = 39


@dataclass(frozen=True)
class ImageFilterSettings:
    targets: str  # .npy of target image embeddings, [m, d]
    clusters: int
    train_size: int
    role: str  # whose embeddings are clustered
    seed: int


def load_targets(path: str) -> np.ndarray:
    try:
        targets = np.load(io.BytesIO(fs.read_bytes(path)), allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UsageError(f"--image_filter_targets: cannot read {path}: {e}") from None
    if targets.ndim != 2 or len(targets) == 0:
        raise UsageError(f"--image_filter_targets: {path} must hold a [n, dim] array, got shape {targets.shape}")
    targets = targets.astype(np.float32)
    return targets / np.maximum(np.linalg.norm(targets, axis=1, keepdims=True), 1e-12)


def _sample_key(uid: str, seed: int) -> int:
    digest = hashlib.blake2b(f"{seed}\x00kmeans\x00{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _candidates(batch: SampleBatch, role: str, seed: int):
    name = vector_name(role)
    for s in batch.samples:
        if name in s.vectors:
            yield _sample_key(s.uid, seed), s.uid, s.vectors[name]


def _rank(candidate) -> tuple[int, str]:
    return candidate[0], candidate[1]  # never compare the vectors


def train(sampled: list, settings: ImageFilterSettings) -> dict:
    """k-means on the sampled embeddings; the clusters nearest to a target are kept."""
    import faiss

    targets = load_targets(settings.targets)
    if not sampled:
        return {"centroids": np.zeros((0, targets.shape[1]), np.float32), "keep": np.zeros(0, bool),
                "k": 0, "trained_on": 0, "targets": len(targets)}
    points = np.stack([vector for _, _, vector in sorted(sampled, key=_rank)]).astype(np.float32)
    if points.shape[1] != targets.shape[1]:
        raise ValueError(f"target embeddings have dim {targets.shape[1]}, the {settings.role} model {points.shape[1]}")
    k = max(1, min(settings.clusters, len(points) // MIN_POINTS_PER_CLUSTER))
    kmeans = faiss.Kmeans(points.shape[1], k, niter=20, seed=settings.seed, spherical=True,
                          min_points_per_centroid=1, verbose=False)
    kmeans.train(points)
    _, nearest = kmeans.index.search(targets, 1)
    keep = np.zeros(k, dtype=bool)
    keep[nearest.ravel()] = True
    return {"centroids": kmeans.centroids.astype(np.float32), "keep": keep, "k": k,
            "trained_on": len(points), "targets": len(targets)}


class TargetClusters(beam.PTransform):
    """Scored batches -> one dict: centroids, which clusters to keep, and how they were found."""

    def __init__(self, settings: ImageFilterSettings):
        super().__init__()
        self.settings = settings

    def expand(self, batches):
        s = self.settings
        return (batches
                | "Candidates" >> beam.FlatMap(_candidates, s.role, s.seed)
                | "SampleByHash" >> beam.combiners.Top.Smallest(s.train_size, key=_rank)
                | "KMeans" >> beam.Map(train, s))


def summarize(clusters: dict) -> dict:
    return {"clusters": clusters["k"], "kept_clusters": int(clusters["keep"].sum()),
            "trained_on": clusters["trained_on"], "targets": clusters["targets"]}


_INDEXES: dict = {}


def assign(embeddings: np.ndarray, clusters: dict) -> np.ndarray:
    """Nearest centroid of each embedding (a FAISS index built once per worker per side input)."""
    import faiss

    centroids = clusters["centroids"]
    cached = _INDEXES.get(id(centroids))
    if cached is None or cached[0] is not centroids:
        _INDEXES.clear()
        index = faiss.IndexFlatL2(centroids.shape[1])
        index.add(centroids)
        cached = _INDEXES[id(centroids)] = (centroids, index)  # holding the array keeps its id unique
    index = cached[1]
    _, nearest = index.search(np.ascontiguousarray(embeddings, dtype=np.float32), 1)
    return nearest.ravel()
