"""The k-means global step as Beam transforms: rows -> training sample -> centroids (a side input).

Rows are `(records, embeddings)` pairs of one batch, `records` a numpy record array with a
`uid` field (S32) and `embeddings` its fp16 rows. A bottom-k combiner keeps the training sample
as rows pass (the same sample on any split); one worker trains the centroids.
"""
from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam
import numpy as np

from curate.clusters.kmeans import cluster_count, sample_key, train_centroids


class TrainingSample(NamedTuple):
    order: np.ndarray  # uint64 sample key of each row (smallest first)
    uids: np.ndarray
    embeddings: np.ndarray | None
    pool: int  # rows seen, sampled or not


class BottomK(beam.CombineFn):
    """The k rows with the smallest keyed hash of (uid, seed)."""

    def __init__(self, k: int, seed: int):
        self.k = k
        self.seed = seed

    def create_accumulator(self):
        return TrainingSample(np.zeros(0, np.uint64), np.zeros(0, "S32"), None, 0)

    def add_input(self, acc, rows):
        records, embeddings = rows
        order = np.array([sample_key(u.decode(), self.seed) for u in records["uid"]], dtype=np.uint64)
        return self._smallest([acc, TrainingSample(order, records["uid"], embeddings, len(records))])

    def merge_accumulators(self, accs):
        return self._smallest(list(accs))

    def _smallest(self, parts: list[TrainingSample]) -> TrainingSample:
        filled = [p for p in parts if p.embeddings is not None and len(p.order)]
        pool = sum(p.pool for p in parts)
        if not filled:
            return TrainingSample(np.zeros(0, np.uint64), np.zeros(0, "S32"), None, pool)
        order = np.concatenate([p.order for p in filled])
        uids = np.concatenate([p.uids for p in filled])
        embeddings = np.concatenate([p.embeddings for p in filled])
        best = np.lexsort((uids, order))[:self.k]
        return TrainingSample(order[best], uids[best], embeddings[best], pool)

    def extract_output(self, acc):
        return acc


class Clustering(NamedTuple):
    """How a stage clusters: training sample size, requested clusters (0: auto), auto's ratio."""

    sample: int
    clusters: int
    rows_per_cluster: int
    seed: int


def train(sample: TrainingSample, how: Clustering) -> dict:
    """{"centroids": [k, dim] unit rows, "facts": how they were made}."""
    rows = 0 if sample.embeddings is None else len(sample.order)
    k = cluster_count(sample.pool, rows, how.clusters, how.rows_per_cluster) if rows else 0
    centroids = train_centroids(sample.embeddings, k, how.seed) if rows else np.zeros((0, 0), np.float32)
    return {"centroids": centroids,
            "facts": {"rows": sample.pool, "training_sample": rows, "clusters": int(len(centroids))}}


class Centroids(beam.PTransform):
    """(records, embeddings) rows -> a PCollection of one {"centroids", "facts"} dict."""

    def __init__(self, how: Clustering):
        super().__init__()
        self.how = how

    def expand(self, rows):
        return (rows | "TrainingSample" >> beam.CombineGlobally(BottomK(self.how.sample, self.how.seed))
                | "Train" >> beam.Map(train, self.how))
