"""Scoring as Beam stages: ScoreWith(model) per role -> [embeddings] -> ScoreCut (global cuts).

Every scored sample gets `<role>_score` (cosine of normalized image and text embeddings) in
the ledger and the shard sidecar, and its fp16 image embedding on `sample.vectors` (see
`curate.score.embeddings.vector_name`). The cuts look at the whole scored pool: absolute
(`--clip_min`), top fraction (`--clip_keep_fraction`, exact, see pool_cut.py) and DataComp's
image-based cluster filter, intersected; a drop is `score:below_threshold` (or
`score:not_target_cluster`) with each applied threshold in `<role>_threshold`.
"""
from __future__ import annotations

import math

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.ml.inference.base import RunInference

from curate.coders import typed_results
from curate.io.ledger_batch import samples_to_batch
from curate.models.resolve import ModelSpec
from curate.sample import SampleBatch
from curate.score import embeddings, image_filter
from curate.score.handler import OpenClipHandler, RunSettings
from curate.score.pool_cut import PoolCut
from curate.score.settings import ScoreSettings
from curate.stage import DROPPED, ApplyParked, ReasonCounters, SampleStage, StageOutput, split_batch

NAME = "score"
BELOW = "below_threshold"


def score_column(role: str) -> str:
    return f"{role}_score"


def threshold_column(role: str) -> str:
    return f"{role}_threshold"


class _ApplyScores(beam.DoFn):
    """PredictionResult(batch, BatchScores) -> kept batch with scores and vectors; failures dropped."""

    def __init__(self, role: str):
        self.role = role

    def setup(self):
        self.counters = ReasonCounters()

    def process(self, result):
        batch, scored = result.example, result.inference
        column, vector = score_column(self.role), embeddings.vector_name(self.role)
        text_vector = embeddings.text_vector_name(self.role)
        reasons = []
        for j, (sample, error) in enumerate(zip(batch.samples, scored.errors)):
            if error is None and math.isnan(scored.scores[j]):
                error = "nan_score"
            if error is not None:
                reasons.append(f"{NAME}:{error}")
                continue
            sample.values[column] = float(scored.scores[j])
            sample.vectors[vector] = scored.embeddings[j]
            if scored.text_embeddings is not None:  # semantic balance may cluster captions
                sample.vectors[text_vector] = scored.text_embeddings[j]
            reasons.append(None)
        self.counters.inc(f"{NAME}_{self.role}_in", len(batch.samples))
        self.counters.inc(f"{NAME}_{self.role}_model_samples", scored.model_samples)
        yield from split_batch(batch, reasons, self.counters)


class _FailedCalls(beam.DoFn):
    """RunInference's dead letters (a failed call's batches, exception) -> ledger rows."""

    def setup(self):
        self.counters = ReasonCounters()

    def process(self, dead_letter):
        batches, (exc_type, _, _) = dead_letter
        reason = f"{NAME}:error_{getattr(exc_type, '__name__', 'Exception')}"
        for batch in batches:
            self.counters.inc(f"dropped_{reason}", len(batch.samples))
            yield batch.ledger_part, samples_to_batch(batch.samples, [reason] * len(batch.samples))


class ScoreWith(beam.PTransform):
    """One model's scores on every sample with an image and a caption. Returns a StageOutput."""

    def __init__(self, spec: ModelSpec, run: RunSettings):
        super().__init__()
        self.spec = spec
        self.run = run
        self.fields = {score_column(spec.role): pa.float32()}

    def expand(self, batches):
        inference, dead = batches | "RunInference" >> RunInference(
            OpenClipHandler(self.spec, self.run)).with_exception_handling()
        typed_results(inference)
        applied = inference | "ApplyScores" >> beam.ParDo(_ApplyScores(self.spec.role)).with_output_types(
            SampleBatch).with_outputs(DROPPED, main="kept")
        failed = dead.failed_inferences | "FailedCalls" >> beam.ParDo(_FailedCalls())
        return StageOutput(applied.kept, [applied[DROPPED], failed], model_usage(inference))


def _sum_usage(pairs) -> tuple:
    samples, seconds = 0, 0.0
    for n, s in pairs:
        samples, seconds = samples + n, seconds + s
    return samples, seconds


def model_usage(inference) -> beam.PCollection:
    """RunInference results -> {samples, model_seconds}: what one model did over the run."""
    return (inference
            | "UsagePairs" >> beam.Map(lambda r: (r.inference.model_samples, r.inference.model_seconds))
            | "SumUsage" >> beam.CombineGlobally(_sum_usage)
            | "UsageFacts" >> beam.Map(lambda t: {"samples": int(t[0]), "model_seconds": round(float(t[1]), 3)}))


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


class ApplyCut(SampleStage):
    """Keeps a sample when every score reaches its threshold (and its image cluster is a target one)."""

    name = NAME

    def __init__(self, fractions: dict, minimums: dict, with_clusters: bool):
        self.fractions = fractions
        self.minimums = minimums
        self.with_clusters = with_clusters
        roles = sorted(set(fractions) | set(minimums))
        self.fields = {threshold_column(r): pa.float32() for r in roles}
        if with_clusters:
            self.fields[image_filter.CLUSTER] = pa.int32()

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
                sample.values[image_filter.CLUSTER] = cluster
                off_target = cluster < 0 or not clusters["keep"][cluster]
            details.append(BELOW if below else image_filter.OFF_TARGET if off_target else None)
        return details


class ScoreCut(beam.PTransform):
    """Global cuts over the pool that reaches it. Returns a StageOutput whose facts are the cuts."""

    park_label = "Apply"  # also names the parked files: a second cut of the same batches needs its own

    def __init__(self, settings: ScoreSettings, output: str = "", pool: beam.PCollection | None = None):
        super().__init__()
        self.output = output
        self.pool = pool  # behind a prefilter: the pool size its keep fractions refer to
        self.fractions = {r: c.keep_fraction for r, c in settings.cuts.items() if c.keep_fraction is not None}
        self.minimums = {r: c.minimum for r, c in settings.cuts.items() if c.minimum is not None}
        self.image_filter = settings.image_filter
        self.dofn = ApplyCut(self.fractions, self.minimums, self.image_filter is not None)
        self.fields = dict(self.dofn.fields)

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
        # batches wait for the pool's cuts on storage (<output>/_spill/), not in the runner
        out = batches | self.park_label >> ApplyParked(self.dofn, self.output, *side)
        return StageOutput(out.kept, out.dropped, _merge_facts(p, "CutFacts", {"minimum": self.minimums}, facts))


def _merge_facts(p, label: str, static: dict, dynamic: dict[str, beam.PCollection]) -> beam.PCollection:
    """One dict: the static facts plus each PCollection's single value under its name."""
    names = sorted(dynamic)

    def merge(_, *values):
        return {**static, **dict(zip(names, values))}

    return p | f"{label}Trigger" >> beam.Create([None]) | f"{label}Merge" >> beam.Map(
        merge, *[beam.pvalue.AsSingleton(dynamic[n]) for n in names])


class Score(beam.PTransform):
    """Every configured model's scores, optional embeddings on disk, then the cuts. A StageOutput."""

    def __init__(self, settings: ScoreSettings, output: str):
        super().__init__()
        self.settings = settings
        self.output = output
        self.fields = {score_column(role): pa.float32() for role in settings.models}
        self.has_cut = any(c.active for c in settings.cuts.values()) or settings.image_filter is not None
        if self.has_cut:
            self.fields.update(ScoreCut(settings).fields)
        self.cascade = None
        if settings.prefilter is not None:
            from curate.score.cascade import Cascade

            self.cascade = Cascade(settings, output)
            self.fields.update(self.cascade.fields)

    def expand(self, batches):
        p = batches.pipeline
        dropped, facts = [], {}
        files: dict[str, beam.PCollection] = {}
        usage: dict[str, beam.PCollection] = {}
        if self.cascade is not None:  # only the prefilter's survivors (and its audit) go on
            batches = self.cascade.before(batches)
        for role, spec in self.settings.models.items():
            out = batches | f"Score_{role}" >> ScoreWith(spec, self.settings.run)
            batches = out.kept
            dropped.extend(out.dropped)
            usage[role] = out.facts
            if self.settings.save_embeddings:
                files[embeddings.folder(role)] = batches | f"SaveEmbeddings_{role}" >> embeddings.WriteEmbeddings(
                    role, self.output)
        pool = None
        if self.cascade is not None:
            batches = self.cascade.after(batches)
            dropped.extend(self.cascade.dropped)
            files.update(self.cascade.files)
            facts["cascade"] = self.cascade.summary(p, usage)
            pool = self.cascade.pool
        if self.has_cut:
            out = batches | "Cut" >> ScoreCut(self.settings, self.output, pool)
            batches = out.kept
            dropped.extend(out.dropped)
            facts["cuts"] = out.facts
        for name, pcoll in files.items():
            facts[f"files:{name}"] = pcoll | f"List_{name.replace('/', '_')}" >> beam.combiners.ToList() | (
                f"Sort_{name.replace('/', '_')}" >> beam.Map(sorted))
        static = {"models": {role: {"model": spec.name, "pretrained": spec.pretrained, "note": spec.note}
                             for role, spec in self.settings.models.items()},
                  "device": self.settings.run.device, "decode": self.settings.run.decode}
        merged = _merge_facts(p, "ScoreFacts", static, facts)
        return StageOutput(batches, dropped, merged | "FilesFacts" >> beam.Map(_nest_files))


def _nest_files(facts: dict) -> dict:
    """`files:<folder>` entries -> facts["files"][folder] (what cleanup keeps on a rerun)."""
    files = {k.split(":", 1)[1]: v for k, v in facts.items() if k.startswith("files:")}
    out = {k: v for k, v in facts.items() if not k.startswith("files:")}
    if files:
        out["files"] = files
    return out
