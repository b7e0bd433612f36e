"""The scoring stage: ScoreWith(model) per role -> [embeddings on disk] -> the cuts, as one Stage.

Every scored sample gets `<role>_score` (cosine of normalized image and text embeddings) in
the ledger and the shard sidecar, and its fp16 image embedding on `sample.vectors` (see
`curate.score.embeddings.vector_name`). The cuts look at the whole scored pool (cuts.py); a
cascade's cheap model may decide first which samples the expensive ones see (cascade.py).

Recipes import this module on every run: it imports neither torch nor open_clip nor Beam's
RunInference (those come when a ScoreWith is expanded). Other stages reach the scoring models
through what Score provides (`run.provided(EMBEDDINGS)`: an `Embeddings`, the vectors it writes
and a way to embed other images; `run.provided(SCORING)`: the ScoreSettings).
"""
from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from curate.errors import UsageError
from curate.models.resolve import fetch_weights
from curate.score import embeddings
from curate.score.provides import Embeddings
from curate.score.cuts import ScoreCut, merge_facts
from curate.score.names import BELOW, NAME, score_column, threshold_column  # noqa: F401  (the stage's names)
from curate.score.options import ScoreOptions
from curate.score.score_with import FailedCalls, ScoreWith  # noqa: F401  (tests build them alone)
from curate.score.settings import ScoreSettings, check_targets, score_settings
from curate.stage import EMBEDDINGS, SCORING, Stage, StageOutput

__all__ = ["BELOW", "NAME", "Score", "ScoreWith", "score_column", "threshold_column"]


class Score(Stage):
    """Every configured model's scores, optional embeddings on disk, then the cuts. A StageOutput."""

    step = "Score"
    name = NAME
    options = (ScoreOptions,)
    model_steps = ("Score_*",)  # one RunInference per model: Score_clip, Score_dfn, Score_prefilter
    provides = (EMBEDDINGS, SCORING)

    def __init__(self, settings: ScoreSettings, output: str, workers_elsewhere: bool = False):
        super().__init__()
        self.settings = settings
        self.output = output
        self.workers_elsewhere = workers_elsewhere  # their workers fetch the weights, not this machine
        for spec in settings.models.values():
            self.fields.update(ScoreWith(spec, settings.inference, settings.text_detector).fields)
        if settings.has_cut:
            self.fields.update(ScoreCut(settings).fields)
        self.cascade = None
        if settings.prefilter is not None:
            from curate.score.cascade import Cascade

            self.cascade = Cascade(settings, output)
            self.fields.update(self.cascade.fields)

    @classmethod
    def settings(cls, run) -> ScoreSettings | None:
        """The run's scoring (validated, derived once per run), or None when no model is named."""
        return run.derive(score_settings)

    @classmethod
    def from_run(cls, run, required: bool = False) -> "Score | None":
        settings = cls.settings(run)
        if settings is None:
            if required:
                raise UsageError("this recipe scores images: give --clip_model or --dfn_model")
            return None
        return cls(settings, run.output, run.workers_elsewhere)

    @classmethod
    def provide(cls, capability: str, run):
        settings = cls.settings(run)
        if settings is None:
            return None
        return Embeddings(settings) if capability == EMBEDDINGS else settings

    def prepare(self) -> None:
        """What resolving the models fixed (printed), their weights, the image filter's targets."""
        for note in self.settings.notes:
            print(f"curate: note: {note}", flush=True)
        if not self.workers_elsewhere:  # remote workers fetch for themselves
            for spec in self.settings.specs:
                fetch_weights(spec)
        check_targets(self.settings)

    def expand(self, batches):
        p = batches.pipeline
        dropped, facts = [], {}
        files: dict[str, beam.PCollection] = {}
        usage: dict[str, beam.PCollection] = {}
        if self.cascade is not None:  # only the prefilter's survivors (and its audit) go on
            batches = self.cascade.before(batches)
        for role, spec in self.settings.models.items():
            out = batches | f"Score_{role}" >> ScoreWith(spec, self.settings.inference, self.settings.text_detector)
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
        if self.settings.has_cut:
            out = batches | "Cut" >> ScoreCut(self.settings, self.output, pool)
            batches = out.kept
            dropped.extend(out.dropped)
            facts["cuts"] = out.facts
        for name, pcoll in files.items():
            facts[f"files:{name}"] = pcoll | f"List_{name.replace('/', '_')}" >> beam.combiners.ToList() | (
                f"Sort_{name.replace('/', '_')}" >> beam.Map(sorted))
        static = {"models": {role: {"model": spec.name, "pretrained": spec.pretrained, "note": spec.note}
                             for role, spec in self.settings.models.items()},
                  "device": self.settings.inference.device, "decode": self.settings.inference.decode,
                  "tmars": None if self.settings.text_detector is None else {
                      "text_detector": self.settings.text_detector, "score_field": self.settings.score_field}}
        merged = merge_facts(p, "ScoreFacts", static, facts)
        return StageOutput(batches, dropped, merged | "FilesFacts" >> beam.Map(_nest_files))


def _nest_files(facts: dict) -> dict:
    """`files:<folder>` entries -> facts["files"][folder] (what cleanup keeps on a rerun)."""
    files = {k.split(":", 1)[1]: v for k, v in facts.items() if k.startswith("files:")}
    out = {k: v for k, v in facts.items() if not k.startswith("files:")}
    if files:
        out["files"] = files
    return out
