"""Semantic balance as Beam transforms: Rows -> Centroids -> Assign -> SmallestPerCluster -> Apply.

Only small values travel: each batch's (rank row, fp16 embedding) pairs; a bottom-k combiner
picks the k-means training sample (SemDeDup's, curate/dedup/semantic_stage.py) as they pass,
one worker trains the centroids (a side input), each batch's rows (parked meanwhile, see
parked_rows.py) get their nearest centroid, and per cluster a combiner keeps a count and the
T rows of smallest rank (memory: T rows per cluster, never the cluster). Batches wait parked under <output>/_spill/ (no image waits in the runner or
crosses a shuffle); each one's name is joined with its own assignments by batch id, and one
per-batch decision step, ApplyCap, takes the caps (size and rank-T row per cluster) as a side input.
"""
from __future__ import annotations

from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa

from curate.balance import cap
from curate.balance.options import ROWS_PER_CLUSTER, BalanceSettings, BalanceOptions, balance_settings
from curate.balance.parked_rows import fetch_rows, park_rows
from curate.clusters.kmeans import nearest
from curate.clusters.transforms import Centroids, Clustering
from curate.io.spill import fetch_batch
from curate.sample import SampleBatch
from curate.stage import DROPPED, EMBEDDINGS, Judge, Stage, StageOutput, apply_judge, park_batch_as

NAME = "balance"
SEMANTIC_CAP = "semantic_cap"  # the drop's detail: `balance:semantic_cap`
WITHOUT_EMBEDDING = f"{NAME}_without_embedding"  # metric: samples no cluster holds

CLUSTER = "semantic_cluster"
CLUSTER_SIZE = "semantic_cluster_size"
FIELDS = {CLUSTER: pa.int32(), CLUSTER_SIZE: pa.int64()}
# a sample's cluster, by its position in its batch (its rank is recomputed from the batch itself)
ASSIGNED_DTYPE = np.dtype([("pos", "<i4"), ("cluster", "<i4")])
BY_BATCH = "by_batch"
PARKED, ASSIGNED = "batch", "assigned"  # the two sides of the join by batch id
MISSING = "missing"
PARKED_ROWS = "parked_rows"


class _Rows(beam.DoFn):
    """A batch -> (rank rows, fp16 embeddings) of its samples with the embedding, for the k-means
    sample; the same parked for the assignment (PARKED_ROWS); a count of the samples without."""

    def __init__(self, cfg: BalanceSettings, output: str):
        self.cfg = cfg
        self.output = output

    def process(self, batch: SampleBatch):
        pos, vectors = batch.first_vectors((self.cfg.vector,))
        if len(pos) < len(batch):
            yield beam.pvalue.TaggedOutput(MISSING, len(batch) - len(pos))
        if len(pos):
            uids = batch.column("uid")
            rows = cap.ranks([uids[i] for i in pos], batch.id, pos, self.cfg.seed)
            yield rows, vectors
            yield beam.pvalue.TaggedOutput(PARKED_ROWS, park_rows(self.output, batch.id, rows, vectors))


class _Assign(beam.DoFn):
    """Each batch's rows -> per cluster (count, its T smallest-rank rows); the batch's assignments."""

    def __init__(self, t: int):
        self.t = t

    def process(self, path, model):
        ranked, embeddings = fetch_rows(path)
        clusters = nearest(embeddings, model["centroids"])
        assigned = np.zeros(len(ranked), ASSIGNED_DTYPE)
        assigned["pos"], assigned["cluster"] = ranked["pos"], clusters
        yield beam.pvalue.TaggedOutput(BY_BATCH, (ranked["batch"][0].decode(), assigned))
        for cluster in np.unique(clusters):
            mine = ranked[clusters == cluster]
            yield int(cluster), (len(mine), cap.smallest([mine], self.t))


class SmallestT(beam.CombineFn):
    """(count, rows) parts of one cluster -> (its size, its T rows of smallest rank)."""

    def __init__(self, t: int):
        self.t = t

    def create_accumulator(self):
        return 0, np.zeros(0, cap.RANK_DTYPE)

    def add_input(self, acc, part):
        return self.merge_accumulators([acc, part])

    def merge_accumulators(self, accs):
        accs = list(accs)
        return sum(n for n, _ in accs), cap.smallest([rows for _, rows in accs], self.t)

    def extract_output(self, acc):
        return acc


def caps_array(per_cluster: list, model: dict, t: int) -> np.ndarray:
    """CAP_DTYPE per centroid (size 0 for an empty cluster), from (cluster, (size, T rows)) pairs."""
    caps = np.zeros(len(model["centroids"]), cap.CAP_DTYPE)
    for cluster, (size, first) in per_cluster:
        caps[cluster] = cap.cap_of(size, first, t)
    return caps


class ApplyCap(Judge):
    """Records each sample's cluster and its size; drops what its cluster's cap leaves out.

    Input: a parked batch joined with its own assignments by batch id (CoGroupByKey), so a
    worker fetches one batch and only that batch's records; the caps are a side input.
    """

    name = NAME

    def __init__(self, t: int, seed: int):
        self.t = t
        self.seed = seed

    def batches(self, joined, caps: np.ndarray):
        _, parts = joined
        records = list(parts[ASSIGNED])
        for ref in parts[PARKED]:
            batch = fetch_batch(ref)
            yield batch, (self.capped(batch, records, caps),)

    def capped(self, batch: SampleBatch, records: list, caps: np.ndarray) -> dict:
        """position -> (cluster, its size, kept) for the batch's samples with an embedding."""
        if not records:
            return {}
        assigned = np.concatenate(records)
        pos, clusters = assigned["pos"], assigned["cluster"]
        uids = batch.column("uid")
        ranks = cap.ranks([uids[p] for p in pos], batch.id, pos, self.seed)
        kept = cap.keep(ranks, clusters, caps, self.t)
        return {p: (cluster, int(caps[cluster]["size"]), ok)
                for p, cluster, ok in zip(pos.tolist(), clusters.tolist(), kept.tolist())}

    def judge(self, sample, capped: dict) -> str | None:
        if sample.pos not in capped:
            return None
        cluster, size, ok = capped[sample.pos]
        sample.values[CLUSTER] = cluster
        sample.values[CLUSTER_SIZE] = size
        return None if ok else SEMANTIC_CAP

    def outputs(self, batch: SampleBatch, reasons, capped: dict):
        self.counters.inc(WITHOUT_EMBEDDING, len(batch) - len(capped))
        return ()


def _park(batch: SampleBatch, output: str):
    return batch.id, park_batch_as(batch, output, "balance")


def facts(caps: np.ndarray, model: dict, missing: int, cfg: BalanceSettings) -> dict:
    sizes, t = caps["size"], cfg.t
    return {**model["facts"], "t": t, "embedding": cfg.vector, "rows_clustered": int(sizes.sum()), "without_embedding": int(missing),
            "nonempty_clusters": int((sizes > 0).sum()), "capped_clusters": int((sizes > t).sum()),
            "largest_cluster": int(sizes.max()) if len(sizes) else 0,
            "kept": int(np.minimum(sizes, t).sum()), "dropped": int(np.maximum(sizes - t, 0).sum())}


class SemanticBalance(Stage):
    """Batches -> StageOutput: each cluster capped at T samples; facts for stats.json."""

    step = "Balance"
    name = NAME
    options = (BalanceOptions,)
    fields = FIELDS
    needs = {EMBEDDINGS: True}

    def __init__(self, cfg: BalanceSettings, output: str):
        super().__init__()
        self.cfg = cfg
        self.output = output  # batches wait for the caps under <output>/_spill/

    @classmethod
    def from_run(cls, run) -> "SemanticBalance | None":
        """None with --balance none. The clustered vector is one the scoring stage provides
        (its image or caption embedding)."""
        embeddings = run.provided(EMBEDDINGS)
        cfg = balance_settings(run.options, run.seed, lambda kind: None if embeddings is None else embeddings.vector(kind))
        return None if cfg is None else cls(cfg, run.output)

    def expand(self, batches):
        cfg = self.cfg
        rows = batches | "Rows" >> beam.ParDo(_Rows(cfg, self.output)).with_outputs(MISSING, PARKED_ROWS, main="rows")
        how = Clustering(cfg.sample, cfg.clusters, ROWS_PER_CLUSTER, cfg.seed)
        model = rows.rows | "Centroids" >> Centroids(how)
        model_side = beam.pvalue.AsSingleton(model)
        assigned = rows[PARKED_ROWS] | "Assign" >> beam.ParDo(_Assign(cfg.t), model_side).with_output_types(
            tuple[int, Any]).with_outputs(BY_BATCH, main="by_cluster")
        caps = (assigned.by_cluster | "SmallestPerCluster" >> beam.CombinePerKey(SmallestT(cfg.t))
                | "AllClusters" >> beam.combiners.ToList()
                | "Caps" >> beam.Map(caps_array, model_side, cfg.t))
        missing = rows[MISSING] | "WithoutEmbedding" >> beam.CombineGlobally(sum)
        parked = batches | "Park" >> beam.Map(_park, self.output)
        joined = {PARKED: parked, ASSIGNED: assigned[BY_BATCH]} | "JoinAssignments" >> beam.CoGroupByKey()
        applied = apply_judge(joined, ApplyCap(cfg.t, cfg.seed), beam.pvalue.AsSingleton(caps), label="Apply")
        summary = caps | "Facts" >> beam.Map(facts, model_side, beam.pvalue.AsSingleton(missing), cfg)
        return StageOutput(applied.kept, [applied[DROPPED]], summary)
