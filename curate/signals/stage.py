"""The signals stage: per-image values beyond CLIP similarity, as ledger columns. One Stage.

`nsfw_score` (LAION's CLIP-based detectors, or any transformers image classifier), `aesthetic_score`
(LAION's aesthetic predictors), `watermark_score` (LAION's watermark detector, or a transformers
classifier) and `text_area` (the share of the image inside detected text boxes). Nothing is cut
here: the values are columns a later cut (or a re-cut from the ledger) reads. The models run in
one RunInference step, `Signals/Model_signals`: --accelerator puts the GPU there. A sample without
an image passes with empty values; an undecodable image is `signals:decode_error`; a failed model
call drops its batches as `signals:error_<Type>`. Recipes import this module on every run: torch
and Beam's RunInference are imported only when the stage is expanded.
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from curate.models.resolve import fetch_weights
from curate.score.options import ScoreOptions
from curate.score.settings import score_settings
from curate.signals.names import NAME, NO_EMBEDDING_METRIC, NO_IMAGE_METRIC, STEP
from curate.signals.options import SignalOptions
from curate.signals.settings import SignalSettings, signal_settings
from curate.stage import DROPPED, EMBEDDINGS, Judge, Stage, StageOutput, apply_judge


class _ApplySignals(Judge):
    """PredictionResult(batch, BatchSignals) -> the batch with its values; undecodable images dropped."""

    name = NAME

    def batches(self, result):
        from curate.score.score_with import ResultRows

        batch = result.example
        yield batch, (ResultRows(result.inference),)

    def judge(self, sample, out) -> str | None:
        from curate.signals.handler import NO_EMBEDDING, NO_IMAGE

        j, result = out.row(sample), out.result
        error = result.errors[j]
        if error in (NO_IMAGE, NO_EMBEDDING):  # not errors: the sample passes without (some) values
            self.counters.inc(NO_IMAGE_METRIC if error == NO_IMAGE else NO_EMBEDDING_METRIC)
        elif error is not None:
            return error
        for column, values in result.values.items():
            if values[j] == values[j]:  # NaN: not computed
                sample.values[column] = float(values[j])
        return None


def _usage(results) -> dict:
    return results.inference.usage


class _SumUsage(beam.CombineFn):
    """model -> [calls, samples, seconds], summed over the run's model calls."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, usage):
        for name, (calls, n, seconds) in usage.items():
            total = acc.setdefault(name, [0, 0, 0.0])
            total[0], total[1], total[2] = total[0] + calls, total[1] + n, total[2] + seconds
        return acc

    def merge_accumulators(self, accs):
        merged = {}
        for acc in accs:
            self.add_input(merged, acc)
        return merged

    def extract_output(self, acc):
        return {name: {"calls": int(c), "samples": int(n), "model_seconds": round(float(s), 3)}
                for name, (c, n, s) in sorted(acc.items())}


class Signals(Stage):
    """NSFW, aesthetic and watermark scores and the text area of every image (columns; nothing cut)."""

    step = STEP
    name = NAME
    options = (SignalOptions, ScoreOptions)  # device, batching, decode threads, --text_detector: scoring's flags
    model_steps = ("Model_*",)
    needs = {EMBEDDINGS: False}  # reused where the scoring stage embeds with the heads' CLIP model

    def __init__(self, settings: SignalSettings, workers_elsewhere: bool = False):
        super().__init__()
        self.settings = settings
        self.workers_elsewhere = workers_elsewhere  # their workers fetch the weights, not this machine
        self.fields.update({column: pa.float32() for column in settings.columns})

    @classmethod
    def from_run(cls, run) -> "Signals | None":
        """The scoring stage's EMBEDDINGS, where it runs before this stage: its embedding of the
        heads' CLIP model is reused."""
        run.derive(score_settings)  # checks the model flags this stage shares (device, batching, T-MARS)
        embeddings = run.provided(EMBEDDINGS)
        settings = signal_settings(run.options, None if embeddings is None else embeddings.settings)
        return None if settings is None else cls(settings, run.workers_elsewhere)

    def prepare(self) -> None:
        """What resolving fixed, then the weights (published files fetched once, hub checkpoints cached)."""
        from curate.models.image_classifier import fetch_classifier
        from curate.models.watermark import URL
        from curate.models.weights import weights_file

        plan = self.settings.plan
        if plan.clip is not None and plan.clip.note:
            print(f"curate: note: {plan.clip.note}", flush=True)
        if self.workers_elsewhere:  # remote workers fetch for themselves
            return
        if plan.clip is not None and plan.embed_here:
            fetch_weights(plan.clip)
        for head in plan.heads.values():
            weights_file(head.weights, head.spec.url, head.flag, f"{head.spec.signal} {head.spec.name}")
        if plan.watermark:
            weights_file(plan.watermark_weights, URL, "--watermark_weights", "the watermark detector")
        for column, spec in plan.classifiers.items():
            fetch_classifier(spec, spec.flag.replace("_model", "_label"))

    def local_files(self) -> dict[str, str]:
        plan = self.settings.plan
        files = {h.flag: h.weights for h in plan.heads.values() if h.weights}
        if plan.watermark_weights:
            files["--watermark_weights"] = plan.watermark_weights
        return files

    def expand(self, batches):
        from apache_beam.ml.inference.base import RunInference  # imports torch

        from curate.coders import typed_results
        from curate.score.score_with import FailedCalls
        from curate.signals.handler import SignalsHandler

        inference, dead = batches | "Model_signals" >> RunInference(
            SignalsHandler(self.settings)).with_exception_handling()
        typed_results(inference)
        applied = apply_judge(inference, _ApplySignals(), label="ApplySignals")
        failed = dead.failed_inferences | "FailedCalls" >> beam.ParDo(FailedCalls(NAME))
        plan = self.settings.plan
        static = {"columns": self.settings.columns,
                  "heads": {c: h.spec.name for c, h in plan.heads.items()},
                  "clip": None if plan.clip is None else plan.clip.describe(),
                  "reused_embedding": self.settings.reuse,
                  "classifiers": {c: {"model": s.name, "label": s.label} for c, s in plan.classifiers.items()},
                  "watermark": "laion" if plan.watermark else None, "text_detector": plan.text_detector}
        facts = (inference | "Usage" >> beam.Map(_usage) | "SumUsage" >> beam.CombineGlobally(_SumUsage())
                 | "Facts" >> beam.Map(lambda usage, static: {**static, "models": usage}, static))
        return StageOutput(applied.kept, [applied[DROPPED], failed], facts)
