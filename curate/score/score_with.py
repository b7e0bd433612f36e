"""One model's scores on a pool: RunInference(OpenClipHandler) -> scores and vectors on the samples.

Every scored sample gets `<role>_score` (cosine of the normalized image and caption embeddings)
and its fp16 image (and caption) embedding on `sample.vectors`; with T-MARS also
`masked_<role>_score` (the same caption against the image with its detected text masked) and
`text_area`; a sample the model could not
score is `score:<detail>` (no_image, no_caption, decode_error, nan_score); a call that raised as
a whole drops its batches as `score:error_<Type>`. Beam's RunInference imports torch: it is
imported when the graph is built, never with this module.
"""
from __future__ import annotations

import math

import apache_beam as beam
import pyarrow as pa

from curate.coders import typed_results
from curate.io import verdicts
from curate.io.ledger_batch import ledger_batch
from curate.models.resolve import ModelSpec
from curate.score import embeddings
from curate.score.names import NAME, NAN_SCORE, TEXT_AREA, masked_role, role_metric, score_column
from curate.score.inference import InferenceSettings
from curate.stage import DROPPED, Judge, ReasonCounters, StageOutput, apply_judge


class ResultRows:
    """A model's result on one batch, read by sample: a Judge may re-judge the samples one at a
    time, and a sample judged alone still knows its position in the batch (`sample.pos`)."""

    def __init__(self, result):
        self.result = result

    @staticmethod
    def row(sample) -> int:
        return sample.pos


class _ApplyScores(Judge):
    """PredictionResult(batch, BatchScores) -> kept batch with scores and vectors; failures dropped."""

    name = NAME

    def __init__(self, role: str):
        self.role = role
        self.column = score_column(role)
        self.masked_column = score_column(masked_role(role))
        self.vector = embeddings.vector_name(role)
        self.text_vector = embeddings.text_vector_name(role)

    def batches(self, result):
        batch, scored = result.example, result.inference
        self.counters.inc(role_metric(self.role, "in"), len(batch))
        self.counters.inc(role_metric(self.role, "model_samples"), scored.model_samples)
        yield batch, (ResultRows(scored),)

    def judge(self, sample, scored: ResultRows) -> str | None:
        j, out = scored.row(sample), scored.result
        error = out.errors[j]
        if error is None and math.isnan(out.scores[j]):
            error = NAN_SCORE
        if error is not None:
            return error
        sample.values[self.column] = float(out.scores[j])
        sample.vectors[self.vector] = out.embeddings[j]
        if out.text_embeddings is not None:  # semantic balance may cluster captions
            sample.vectors[self.text_vector] = out.text_embeddings[j]
        if out.masked_scores is not None:  # T-MARS
            sample.values[self.masked_column] = float(out.masked_scores[j])
            sample.values[TEXT_AREA] = float(out.text_areas[j])
        return None


class FailedCalls(beam.DoFn):
    """RunInference's dead letters (a failed call's batches, exception) -> ledger rows
    `<name>:error_<Type>` (the scoring stage's, or another model stage's `name`)."""

    def __init__(self, name: str = NAME):
        self.name = name

    def setup(self):
        self.counters = ReasonCounters()

    def process(self, dead_letter):
        batches, (exc_type, _, _) = dead_letter
        why = verdicts.reason(self.name, f"error_{getattr(exc_type, '__name__', 'Exception')}")
        yield from failed_call_rows(batches, why, self.counters)


def failed_call_rows(batches, why: str, counters: ReasonCounters):
    """Every sample of a failed model call's batches -> (batch id, rows) with reason `why`, counted."""
    for batch in batches:
        counters.dropped(why, len(batch))
        yield batch.id, ledger_batch(batch, [why] * len(batch))


class ScoreWith(beam.PTransform):
    """One model's scores on every sample with an image and a caption. Returns a StageOutput."""

    def __init__(self, spec: ModelSpec, inference: InferenceSettings, text_detector: str | None = None):
        super().__init__()
        self.spec = spec
        self.inference = inference
        self.text_detector = text_detector  # T-MARS: also the score of the text-masked image
        self.fields = {score_column(spec.role): pa.float32()}
        if text_detector:
            self.fields.update({score_column(masked_role(spec.role)): pa.float32(), TEXT_AREA: pa.float32()})

    def expand(self, batches):
        from apache_beam.ml.inference.base import RunInference  # imports torch

        from curate.score.handler import OpenClipHandler

        inference, dead = batches | "RunInference" >> RunInference(
            OpenClipHandler(self.spec, self.inference, self.text_detector)).with_exception_handling()
        typed_results(inference)
        applied = apply_judge(inference, _ApplyScores(self.spec.role), label="ApplyScores")
        failed = dead.failed_inferences | "FailedCalls" >> beam.ParDo(FailedCalls())
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
