"""DataComp's image-based filter: keep samples whose image falls in a k-means cluster that some
target image (e.g. ImageNet train) is nearest to.

Global step on small keyed values, the shared k-means of curate/clusters: a deterministic
sample of the pool's fp16 image embeddings trains a spherical k-means; the targets' nearest
centroids mark the clusters to keep. The centroids reach the per-sample decision as a side
input. DataComp used 100k clusters on its pool; here k is also capped by the training sample
(the clusters' one minimum-points rule).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from curate.clusters.kmeans import nearest
from curate.clusters.transforms import Centroids, Clustering
from curate.errors import UsageError
from curate.io import files as fs
from curate.sample import SampleBatch
from curate.score.embeddings import vector_name
from curate.score.names import CLUSTER, OFF_TARGET  # noqa: F401  (the filter's column and drop detail)


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


def _rows(batch: SampleBatch, role: str):
    """(uids, fp16 embeddings) of the batch's samples that the role's model embedded."""
    rows, vectors = batch.first_vectors((vector_name(role),))
    if len(rows):
        uids = batch.column("uid")
        records = np.zeros(len(rows), dtype=[("uid", "S32")])
        records["uid"] = [uids[r].encode() for r in rows]
        yield records, vectors


def target_clusters(model: dict, settings: ImageFilterSettings) -> dict:
    """The clusters nearest to a target are kept."""
    targets = load_targets(settings.targets)
    centroids = model["centroids"]
    if not len(centroids):
        return {"centroids": np.zeros((0, targets.shape[1]), np.float32), "keep": np.zeros(0, bool),
                "k": 0, "trained_on": 0, "targets": len(targets)}
    if centroids.shape[1] != targets.shape[1]:
        raise ValueError(f"target embeddings have dim {targets.shape[1]}, the {settings.role} model {centroids.shape[1]}")
    keep = np.zeros(len(centroids), dtype=bool)
    keep[nearest(targets, centroids)] = True
    return {"centroids": centroids, "keep": keep, "k": len(centroids),
            "trained_on": model["facts"]["training_sample"], "targets": len(targets)}


class TargetClusters(beam.PTransform):
    """Scored batches -> one dict: centroids, which clusters to keep, and how they were found."""

    def __init__(self, settings: ImageFilterSettings):
        super().__init__()
        self.settings = settings

    def expand(self, batches):
        s = self.settings
        how = Clustering(s.train_size, s.clusters, rows_per_cluster=1, seed=s.seed)  # a count is always given
        return (batches | "Rows" >> beam.FlatMap(_rows, s.role) | "Centroids" >> Centroids(how)
                | "Targets" >> beam.Map(target_clusters, s))


def summarize(clusters: dict) -> dict:
    return {"clusters": clusters["k"], "kept_clusters": int(clusters["keep"].sum()),
            "trained_on": clusters["trained_on"], "targets": clusters["targets"]}


def assign(embeddings: np.ndarray, clusters: dict) -> np.ndarray:
    """Nearest centroid of each embedding."""
    return nearest(embeddings, clusters["centroids"])
