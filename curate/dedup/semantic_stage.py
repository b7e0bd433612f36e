"""SemDeDup as Beam transforms: Centroids -> Assign -> DedupClusters.

Only (keys, fp16 embedding) rows are read, and they wait on storage: the shared k-means step
(curate/clusters) trains the centroids on a deterministic sample (a side input for everyone),
each batch's rows are split by nearest centroid into files named per cluster, the file names
are grouped per cluster, and each cluster is deduplicated alone.
"""
from __future__ import annotations

import io

import apache_beam as beam
import numpy as np

from curate.clusters.kmeans import nearest
from curate.clusters.transforms import Centroids, Clustering
from curate.dedup import semdedup
from curate.dedup.decisions import by_batch, remaining
from curate.dedup.keys import concat
from curate.dedup.options import DedupSettings
from curate.io import files as fs
from curate.io import spill

CLUSTER_STATS = "cluster_stats"


def _facts_of(model: dict, cfg: DedupSettings) -> dict:
    return {**model["facts"], "eps": cfg.semdedup_eps, "keep": cfg.semdedup_keep, "embedding": cfg.embedding}


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

    def process(self, path, model):
        keys, embeddings = load_rows(path)
        clusters = nearest(embeddings, model["centroids"])
        for cluster in np.unique(clusters):
            mine = clusters == cluster
            yield int(cluster), park_rows((keys[mine], embeddings[mine]), self.output, f"semdedup_c{int(cluster)}")[1]


class _DedupCluster(beam.DoFn):
    def __init__(self, cfg: DedupSettings):
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


def _facts(stats, model, cfg: DedupSettings) -> tuple[str, dict]:
    rows, dropped, largest, clusters = stats
    return "semantic", {**_facts_of(model, cfg), "rows_clustered": rows, "dropped": dropped,
                        "largest_cluster": largest, "nonempty_clusters": clusters}


class SemanticDedup(beam.PTransform):
    """(keys, embeddings) rows -> (drops keyed by batch id, ("semantic", facts)).

    Rows wait for the earlier drops and the centroids on storage under `<output>/_spill/`, and
    only file names are grouped per cluster: a worker holds one cluster's rows, the runner none.
    """

    def __init__(self, cfg: DedupSettings, output: str, earlier_drops=None):
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
        how = Clustering(self.cfg.semdedup_sample, self.cfg.semdedup_clusters, semdedup.ROWS_PER_CLUSTER,
                         self.cfg.seed)
        model = paths | "Load" >> beam.Map(load_rows) | "Centroids" >> Centroids(how)
        model_side = beam.pvalue.AsSingleton(model)
        out = (
            paths | "Assign" >> beam.ParDo(_Assign(output), model_side)
            | "ByCluster" >> beam.GroupByKey()
            | "DedupClusters" >> beam.ParDo(_DedupCluster(self.cfg), model_side).with_outputs(
                CLUSTER_STATS, main="drops")
        )
        facts = (out[CLUSTER_STATS] | "ClusterStats" >> beam.CombineGlobally(_add_stats)
                 | "Facts" >> beam.Map(_facts, model_side, self.cfg))
        return out.drops, facts
