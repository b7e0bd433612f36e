"""The score cuts: decided over the whole scored pool, applied to each sample.

Absolute (`--clip_min`), top fraction (`--clip_keep_fraction`, exact, see pool_cut.py) and
DataComp's image-based cluster filter, intersected; a drop is `score:below_threshold` (or
`score:not_target_cluster`) with each applied threshold in `<role>_threshold`. The batches wait
for the pool's cuts parked on storage (`<output>/_spill/`), not in the runner.
"""
from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa

from curate.sample import SampleBatch
from curate.score import embeddings, image_filter
from curate.score.names import BELOW, CLUSTER, NAME, OFF_TARGET, score_column, threshold_column
from curate.score.pool_cut import PoolCut
from curate.score.settings import ScoreSettings
from curate.stage import ApplyParked, Judge, StageOutput


def _scores_for_cut(batch: SampleBatch, roles: tuple[str, ...]) -> dict:
    return {role: np.array([s.values[score_column(role)] for s in batch.samples], dtype=np.float32)
            for role in roles}


def _thresholds(fractions: dict, minimums: dict, pool_cuts: dict | None) -> dict:
    """role -> the score a sample needs (the stricter of the absolute and the pool cut)."""
    needed = {}
    for role in set(fractions) | set(minimums):
        candidates = [minimums[role]] if minimums.get(role) is not None else []
        if role in fractions:
            candidates.append(pool_cuts[role]["threshold"])
        needed[role] = float(np.float32(max(candidates)))
    return needed


class ApplyCut(Judge):
    """Keeps a sample when every score reaches its threshold (and its image cluster is a target one)."""

    name = NAME

    def __init__(self, fractions: dict, minimums: dict, with_clusters: bool):
        self.fractions = fractions
        self.minimums = minimums
        self.with_clusters = with_clusters
        roles = sorted(set(fractions) | set(minimums))
        self.fields = {threshold_column(r): pa.float32() for r in roles}
        if with_clusters:
            self.fields[CLUSTER] = pa.int32()

    def judge_batch(self, samples, pool_cuts=None, clusters=None):
        needed = _thresholds(self.fractions, self.minimums, pool_cuts)
        nearest = None
        if self.with_clusters and samples and clusters["k"]:
            vector = embeddings.vector_name("clip")
            nearest = image_filter.assign(np.stack([s.vectors[vector] for s in samples]), clusters)
        details = []
        for j, sample in enumerate(samples):
            below = False
            for role, threshold in needed.items():
                sample.values[threshold_column(role)] = threshold
                below |= not np.float32(sample.values[score_column(role)]) >= np.float32(threshold)
            off_target = False
            if self.with_clusters:
                cluster = -1 if nearest is None else int(nearest[j])
                sample.values[CLUSTER] = cluster
                off_target = cluster < 0 or not clusters["keep"][cluster]
            details.append(BELOW if below else OFF_TARGET if off_target else None)
        return details


class ScoreCut(beam.PTransform):
    """Global cuts over the pool that reaches it. Returns a StageOutput whose facts are the cuts."""

    park_label = "Apply"  # also names the parked files: a second cut of the same batches needs its own

    def __init__(self, settings: ScoreSettings, output: str = "", pool: beam.PCollection | None = None):
        super().__init__()
        self.output = output
        self.pool = pool  # behind a prefilter: the pool size its keep fractions refer to
        # keyed by what each cut reads: the role, or masked_<role> for the T-MARS score
        self.fractions = {settings.cut_name(r): c.keep_fraction for r, c in settings.cuts.items()
                          if c.keep_fraction is not None}
        self.minimums = {settings.cut_name(r): c.minimum for r, c in settings.cuts.items() if c.minimum is not None}
        self.image_filter = settings.image_filter
        self.judge = ApplyCut(self.fractions, self.minimums, self.image_filter is not None)
        self.fields = dict(self.judge.fields)

    def expand(self, batches):
        p = batches.pipeline
        side, facts = [], {}
        if self.fractions:
            cuts = (batches | "PoolScores" >> beam.Map(_scores_for_cut, tuple(self.fractions))
                    | "PoolCut" >> PoolCut(self.fractions, self.pool))
            side.append(beam.pvalue.AsSingleton(cuts))
            facts["keep_fraction"] = cuts
        else:
            side.append(beam.pvalue.AsSingleton(p | "NoPoolCut" >> beam.Create([None])))
        if self.image_filter is not None:
            clusters = batches | "TargetClusters" >> image_filter.TargetClusters(self.image_filter)
            side.append(beam.pvalue.AsSingleton(clusters))
            facts["image_filter"] = clusters | "SummarizeClusters" >> beam.Map(image_filter.summarize)
        out = batches | self.park_label >> ApplyParked(self.judge, self.output, *side)
        return StageOutput(out.kept, out.dropped, merge_facts(p, "CutFacts", {"minimum": self.minimums}, facts))


def merge_facts(p, label: str, static: dict, dynamic: dict[str, beam.PCollection]) -> beam.PCollection:
    """One dict: the static facts plus each PCollection's single value under its name."""
    names = sorted(dynamic)

    def merge(_, *values):
        return {**static, **dict(zip(names, values))}

    return p | f"{label}Trigger" >> beam.Create([None]) | f"{label}Merge" >> beam.Map(
        merge, *[beam.pvalue.AsSingleton(dynamic[n]) for n in names])
