"""SemDeDup as Beam transforms: Sample -> Centroids -> Assign -> DedupClusters.

Only (keys, fp16 embedding) rows are read, and they wait on storage: a bottom-k combiner picks
the deterministic training sample, one worker trains the centroids (a side input for everyone),
each batch's rows are split by nearest centroid into files named per cluster, the file names
are grouped per cluster, and each cluster is deduplicated alone.
"""
from __future__ import annotations

import io
from typing import NamedTuple

import apache_beam as beam
import numpy as np

from curate.dedup import semdedup
from curate.dedup.decisions import by_batch, remaining
from curate.dedup.keys import concat
from curate.dedup.options import DedupConfig
from curate.io import files as fs
from curate.io import spill

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


def park_rows(rows, output: str, name: str) -> tuple[str, str]:
    """(keys, embeddings) of one batch -> (batch id, path of the file they wait in)."""
    keys, embeddings = rows
    batch_id = keys["batch"][0].decode()
    path = fs.join(output, spill.SPILL_DIR, name, f"{batch_id}.npz")
    buf = io.BytesIO()
    np.savez(buf, keys=keys, embeddings=embeddings)
    fs.write_bytes(path, buf.getvalue())
    return batch_id, path


def load_rows(path: str):
    with np.load(io.BytesIO(fs.read_bytes(path))) as f:
        return f["keys"], f["embeddings"]


class _WithoutDropped(beam.DoFn):
    """A parked batch's rows joined with its earlier drops -> the rows left, parked again."""

    def __init__(self, output: str):
        self.output = output

    def process(self, joined):
        _, parts = joined
        for path in parts["rows"]:
            keys, embeddings = load_rows(path)
            left = remaining(keys, list(parts["drops"]))
            if left.any():
                yield park_rows((keys[left], embeddings[left]), self.output, "semdedup_left")[1]


class _Assign(beam.DoFn):
    """A parked batch's rows -> (cluster, path of its rows in that cluster) for every cluster it touches."""

    def __init__(self, output: str):
        self.output = output

    def setup(self):
        self._index = self._for = None

    def process(self, path, model):
        keys, embeddings = load_rows(path)
        if self._for is not model["centroids"]:
            self._index, self._for = semdedup.CentroidIndex(model["centroids"]), model["centroids"]
        clusters = self._index.assign(embeddings)
        for cluster in np.unique(clusters):
            mine = clusters == cluster
            yield int(cluster), park_rows((keys[mine], embeddings[mine]), self.output, f"semdedup_c{int(cluster)}")[1]


class _DedupCluster(beam.DoFn):
    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, cluster_paths, model):
        cluster, paths = cluster_paths
        parts = [load_rows(p) for p in sorted(set(paths))]
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
    """(keys, embeddings) rows -> (drops keyed by batch id, ("semantic", facts)).

    Rows wait for the earlier drops and the centroids on storage under `<output>/_spill/`, and
    only file names are grouped per cluster: a worker holds one cluster's rows, the runner none.
    """

    def __init__(self, cfg: DedupConfig, output: str, earlier_drops=None):
        super().__init__()
        self.cfg = cfg
        self.output = output
        self.earlier_drops = earlier_drops

    def expand(self, rows):
        output = self.output
        parked = rows | "Park" >> beam.Map(park_rows, output, "semdedup")
        if self.earlier_drops is not None:
            paths = ({"rows": parked, "drops": self.earlier_drops} | "JoinEarlierDrops" >> beam.CoGroupByKey()
                     | "WithoutEarlierDrops" >> beam.ParDo(_WithoutDropped(output)))
        else:
            paths = parked | "Paths" >> beam.Values()
        model = (paths | "Load" >> beam.Map(load_rows)
                 | "TrainingSample" >> beam.CombineGlobally(BottomK(self.cfg.semdedup_sample, self.cfg.seed))
                 | "Centroids" >> beam.Map(train, self.cfg))
        model_side = beam.pvalue.AsSingleton(model)
        out = (
            paths | "Assign" >> beam.ParDo(_Assign(output), model_side)
            | "ByCluster" >> beam.GroupByKey()
            | "DedupClusters" >> beam.ParDo(_DedupCluster(self.cfg), model_side).with_outputs(
                CLUSTER_STATS, main="drops")
        )
        facts = (out[CLUSTER_STATS] | "ClusterStats" >> beam.CombineGlobally(_add_stats)
                 | "Facts" >> beam.Map(_facts, model_side))
        return out.drops, facts
