"""SemDeDup as Beam transforms: Sample -> Centroids -> Assign -> DedupClusters.

Only (keys, fp16 embedding) rows travel: a bottom-k combiner picks the deterministic training
sample, one worker trains the centroids (a side input for everyone), each batch's rows are
keyed by nearest centroid and grouped per cluster, and each cluster is deduplicated alone.
"""
from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam
import numpy as np

from curate.dedup import semdedup
from curate.dedup.decisions import by_batch, remaining
from curate.dedup.keys import concat
from curate.dedup.options import DedupConfig

CLUSTER_STATS = "cluster_stats"


class _Sample(NamedTuple):
    order: np.ndarray  # uint64 sample key of each row (smallest first)
    uids: np.ndarray
    embeddings: np.ndarray | None
    pool: int  # rows seen, sampled or not


class BottomK(beam.CombineFn):
    """The k rows with the smallest keyed hash of (uid, seed): the same sample on any split."""

    def __init__(self, k: int, seed: int):
        self.k = k
        self.seed = seed

    def create_accumulator(self):
        return _Sample(np.zeros(0, np.uint64), np.zeros(0, "S32"), None, 0)

    def add_input(self, acc, rows):
        keys, embeddings = rows
        order = np.array([semdedup.sample_key(u.decode(), self.seed) for u in keys["uid"]], dtype=np.uint64)
        return self._smallest([acc, _Sample(order, keys["uid"], embeddings, len(keys))])

    def merge_accumulators(self, accs):
        return self._smallest(list(accs))

    def _smallest(self, parts: list[_Sample]) -> _Sample:
        filled = [p for p in parts if p.embeddings is not None and len(p.order)]
        pool = sum(p.pool for p in parts)
        if not filled:
            return _Sample(np.zeros(0, np.uint64), np.zeros(0, "S32"), None, pool)
        order = np.concatenate([p.order for p in filled])
        uids = np.concatenate([p.uids for p in filled])
        embeddings = np.concatenate([p.embeddings for p in filled])
        best = np.lexsort((uids, order))[:self.k]
        return _Sample(order[best], uids[best], embeddings[best], pool)

    def extract_output(self, acc):
        return acc


def train(sample: _Sample, cfg: DedupConfig) -> dict:
    """Centroids (a side input) and the facts of how they were made."""
    rows = 0 if sample.embeddings is None else len(sample.order)
    k = semdedup.cluster_count(sample.pool, rows, cfg.semdedup_clusters) if rows else 0
    centroids = (semdedup.train_centroids(semdedup.normalize(sample.embeddings), k, cfg.seed)
                 if rows else np.zeros((0, 0), np.float32))
    facts = {"rows": sample.pool, "training_sample": rows, "clusters": int(len(centroids)),
             "eps": cfg.semdedup_eps, "keep": cfg.semdedup_keep, "embedding": cfg.embedding}
    return {"centroids": centroids, "facts": facts}


class _WithoutDropped(beam.DoFn):
    def process(self, rows, earlier):
        keys, embeddings = rows
        left = remaining(keys, earlier[keys["batch"][0].decode()])
        if left.any():
            yield keys[left], embeddings[left]


class _Assign(beam.DoFn):
    """(cluster, rows of one batch in it) for every cluster the batch's rows fall in."""

    def setup(self):
        self._index = self._for = None

    def process(self, rows, model):
        keys, embeddings = rows
        if self._for is not model["centroids"]:
            self._index, self._for = semdedup.CentroidIndex(model["centroids"]), model["centroids"]
        clusters = self._index.assign(embeddings)
        for cluster in np.unique(clusters):
            mine = clusters == cluster
            yield int(cluster), (keys[mine], embeddings[mine])


class _DedupCluster(beam.DoFn):
    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, cluster_rows, model):
        cluster, parts = cluster_rows
        parts = list(parts)
        keys = concat([k for k, _ in parts])
        embeddings = np.concatenate([e for _, e in parts])
        drops = semdedup.dedup_cluster(keys, embeddings, model["centroids"][cluster],
                                       self.cfg.semdedup_eps, self.cfg.semdedup_keep)
        yield beam.pvalue.TaggedOutput(CLUSTER_STATS, (len(keys), len(drops), len(keys), 1))
        yield from by_batch(drops)


def _add_stats(items) -> tuple[int, int, int, int]:
    rows = dropped = largest = clusters = 0
    for r, d, big, c in items:
        rows, dropped, largest, clusters = rows + r, dropped + d, max(largest, big), clusters + c
    return rows, dropped, largest, clusters


def _facts(stats, model) -> tuple[str, dict]:
    rows, dropped, largest, clusters = stats
    return "semantic", {**model["facts"], "rows_clustered": rows, "dropped": dropped,
                        "largest_cluster": largest, "nonempty_clusters": clusters}


class SemanticDedup(beam.PTransform):
    """(keys, embeddings) rows -> (drops keyed by batch id, ("semantic", facts))."""

    def __init__(self, cfg: DedupConfig, earlier_drops=None):
        super().__init__()
        self.cfg = cfg
        self.earlier_drops = earlier_drops

    def expand(self, rows):
        if self.earlier_drops is not None:
            rows = rows | "WithoutEarlierDrops" >> beam.ParDo(
                _WithoutDropped(), beam.pvalue.AsMultiMap(self.earlier_drops))
        model = (rows | "TrainingSample" >> beam.CombineGlobally(BottomK(self.cfg.semdedup_sample, self.cfg.seed))
                 | "Centroids" >> beam.Map(train, self.cfg))
        model_side = beam.pvalue.AsSingleton(model)
        out = (
            rows | "Assign" >> beam.ParDo(_Assign(), model_side)
            | "ByCluster" >> beam.GroupByKey()
            | "DedupClusters" >> beam.ParDo(_DedupCluster(self.cfg), model_side).with_outputs(
                CLUSTER_STATS, main="drops")
        )
        facts = (out[CLUSTER_STATS] | "ClusterStats" >> beam.CombineGlobally(_add_stats)
                 | "Facts" >> beam.Map(_facts, model_side))
        return out.drops, facts
