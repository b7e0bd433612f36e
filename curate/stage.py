"""The one Stage type: a recipe is an ordered list of them.

A stage is a `beam.PTransform` over SampleBatches that returns a StageOutput (kept batches,
dropped ledger rows, facts for stats.json). The class declares what the rest of curate needs
to know, so that adding a stage means writing it and naming it in a recipe:

    step             its label in the graph and its key in stats.json ("Score")
    name             the prefix of its reasons and metrics ("score" -> "score:below_threshold")
    options          the PipelineOptions classes whose flags it reads (help, recipe defaults)
    fields           the ledger columns it adds, with their Arrow types
    model_steps      labels of its inner steps that run models: --accelerator goes there only
    needs            what it asks of other stages (EMBEDDINGS, FETCHER, SCORING), each required
                     or optional: the recipe must list a stage that `provides` a required one
    provides         what it offers other stages, computed by `provide(capability, run)`

`from_run(run)` builds it from the run's flags, validating them once (a UsageError is exit 2
before the pipeline starts), or returns None when the flags turn it off; what it needs from
other stages it asks for with `run.provided(capability)` (None when no stage of the recipe
provides it, or the provider's flags turn it off); `prepare()` does what needs files or
network before the run (weights, metadata).

Samples are judged by a `Judge` (a DoFn): it decides a batch, turns every decision into a
kept sample or a `name:detail` ledger row, and counts both. A failure on one sample is that
sample's drop by construction: a Judge cannot override `process`, and a batch whose judgement
raises is judged again one sample at a time. A stage that is one per-sample rule is a
SampleStage: the class itself says `judge(sample)`.
"""
from __future__ import annotations

import copy
import uuid
from typing import Any, ClassVar, Iterable

import apache_beam as beam
import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions

from curate import coders  # noqa: F401  (registers the SampleBatch coder)
from curate.io.spill import BatchRef, fetch_batch, park_batch
from curate.io.verdicts import DROPPED, METRICS_NAMESPACE, ReasonCounters, StageOutput, reason, split_batch
from curate.sample import Sample, SampleBatch

__all__ = ["DROPPED", "METRICS_NAMESPACE", "ApplyParked", "Judge", "ReasonCounters", "SampleStage", "Stage",
           "StageOutput", "apply_judge", "error_detail", "park", "split_batch"]


def error_detail(e: BaseException) -> str:
    """The detail of a drop caused by an exception on that sample (`<stage>:error_<Type>`)."""
    return f"error_{type(e).__name__}"


# What stages provide each other (Stage.needs / Stage.provides / Stage.provide):
EMBEDDINGS = "embeddings"  # the scoring models' embeddings on samples, and a way to embed other images
FETCHER = "fetcher"  # a transform that downloads URL-only batches (an eval set's)
SCORING = "scoring"  # the run's scoring models (ScoreSettings)
RUNNING = frozenset({EMBEDDINGS})  # made on the samples: only a stage that runs before its consumer provides it


class Stage(beam.PTransform):
    """A step of a recipe. Subclasses set the declarations below and implement `expand`."""

    step: ClassVar[str] = "Stage"
    name: ClassVar[str] = "stage"
    options: ClassVar[tuple[type[PipelineOptions], ...]] = ()
    model_steps: ClassVar[tuple[str, ...]] = ()
    needs: ClassVar[dict[str, bool]] = {}  # capability -> required (the recipe must provide it)
    provides: ClassVar[tuple[str, ...]] = ()
    fields: dict[str, pa.DataType] = {}

    def __init__(self):
        super().__init__()  # its label is its step: one name in the graph, stats.json and --help
        self.fields = dict(type(self).fields)  # an instance may add columns its settings imply

    def default_label(self) -> str:
        return self.step

    @classmethod
    def from_run(cls, run, **settings) -> "Stage | None":
        """The stage as this run's flags configure it, or None when they turn it off."""
        return cls(**settings)

    @classmethod
    def provide(cls, capability: str, run):
        """What this stage offers for `capability` in this run, or None (its flags turn it off)."""
        raise NotImplementedError(f"{cls.__name__} provides {', '.join(cls.provides) or 'nothing'}")

    @classmethod
    def using(cls, **settings) -> "StageSpec":
        """A recipe entry that passes this stage recipe-level settings (`required=True`)."""
        return StageSpec(cls, settings)

    def prepare(self) -> None:
        """Before the pipeline starts: checks and fetches that need files or network."""

    def local_files(self) -> dict[str, str]:
        """Files its workers read, by flag: a runner on other machines refuses a local path."""
        return {}

    def __getstate__(self):
        # a stage's Judge may carry the stage to workers: never with the pipeline it was applied in
        state = self.__dict__.copy()
        state["pipeline"] = None
        return state


class StageSpec:
    """A stage class and the settings its recipe gives it: what a recipe lists when the class alone is not enough."""

    def __init__(self, cls: type[Stage], settings: dict[str, Any]):
        self.cls = cls
        self.settings = settings

    def from_run(self, run) -> Stage | None:
        return self.cls.from_run(run, **self.settings)

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"{self.cls.__name__}.using({given})"


def stage_class(entry) -> type[Stage]:
    """The Stage class of a recipe entry (a class or a StageSpec)."""
    return entry.cls if isinstance(entry, StageSpec) else entry


class Judge(beam.DoFn):
    """Decides every sample of a batch; what it keeps flows on, what it drops becomes ledger rows.

    Override `judge` (one sample) or `judge_batch` (all of a batch at once); both return a
    detail per sample (None keeps it) and may record values on `sample.values` first.
    `batches` says what to judge in an element (default: the batch itself, fetched if it was
    parked); `outputs` yields small tagged values beside the kept batch (keys, counts), from
    the judged batch. `process` is the base's alone: it is where failures become drops.
    """

    name = "stage"
    counts_inputs = True  # count `<name>_in`; a stage's second judge of the same samples says False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "process" in vars(cls):
            raise TypeError(f"{cls.__name__}: a Judge overrides judge/judge_batch/batches/outputs, "
                            "not process (failures on one sample must stay drops)")

    def setup(self):
        self.counters = ReasonCounters()

    def judge(self, sample: Sample, *side) -> str | None:
        raise NotImplementedError

    def judge_batch(self, batch: SampleBatch, *side) -> list[str | None]:
        """A detail per row (None keeps it). `batch` is column-wise (`batch.column("caption")`)
        and iterates as row views (`for sample in batch`)."""
        return judge_each(self.judge, batch, *side)

    def batches(self, element, *side) -> Iterable[tuple[SampleBatch, tuple]]:
        yield (fetch_batch(element) if isinstance(element, BatchRef) else element), side

    def outputs(self, batch: SampleBatch, reasons: list[str | None], *side) -> Iterable:
        return ()

    def process(self, element, *side):
        for batch, args in self.batches(element, *side):
            details = self._decide(batch, args)
            reasons = [None if d is None else reason(self.name, d) for d in details]
            if self.counts_inputs:
                self.counters.inc(f"{self.name}_in", len(batch))
            yield from self.outputs(batch, reasons, *args)
            yield from split_batch(batch, reasons, self.counters)

    def _decide(self, batch: SampleBatch, args: tuple) -> list[str | None]:
        try:
            details = list(self.judge_batch(batch, *args))
            if len(details) != len(batch):
                raise ValueError(f"{type(self).__name__} judged {len(details)} of {len(batch)} samples")
            return details
        except Exception as e:  # one bad sample must not take its batch with it: judge each alone
            if len(batch) <= 1:
                return [error_detail(e)] * len(batch)
            details = []
            for i in range(len(batch)):
                alone = batch.take([i], keep_origin=True)
                details.append(self._decide(alone, args)[0])
                batch.put_rows([i], alone)  # what the judge recorded on the row
            return details


def judge_each(judge, samples: Iterable[Sample], *side) -> list[str | None]:
    details = []
    for sample in samples:
        try:
            details.append(judge(sample, *side))
        except Exception as e:  # bad data never crashes a run: it becomes a ledger row
            details.append(error_detail(e))
    return details


def apply_judge(batches, judge: Judge, *side_inputs, tags: tuple[str, ...] = (), label: str | None = None):
    """ParDo of a Judge (labelled `label` if given): outputs `kept` and DROPPED, plus its own `tags`."""
    pardo = beam.ParDo(judge, *side_inputs)
    return batches | (label or pardo.label) >> pardo.with_output_types(SampleBatch).with_outputs(
        DROPPED, *tags, main="kept")


class SampleStage(Stage):
    """A stage that judges each sample on its own: the class says `judge(sample)` (or
    `judge_batch(samples)`), and `setup()` builds what it needs on the worker."""

    def setup(self) -> None:
        """On the worker, before the first sample (load models, open files)."""

    def judge(self, sample: Sample) -> str | None:
        raise NotImplementedError

    def judge_batch(self, batch: SampleBatch) -> list[str | None]:
        return judge_each(self.judge, batch)

    def expand(self, batches):
        out = apply_judge(batches, _StageJudge(copy.copy(self)))
        return StageOutput(out.kept, [out[DROPPED]])


class _StageJudge(Judge):
    """A SampleStage's rule applied by the one Judge."""

    def __init__(self, stage: SampleStage):
        self.stage = stage
        self.name = stage.name

    def setup(self):
        super().setup()
        self.stage.setup()

    def judge_batch(self, batch, *side):
        return self.stage.judge_batch(batch)


def park(batches, output: str, name: str):
    """Each batch written under `<output>/_spill/`; only its BatchRef travels on."""
    return batches | "Park" >> beam.Map(park_batch_as, output, name)


def park_batch_as(batch: SampleBatch, output: str, name: str) -> BatchRef:
    return park_batch(output, name.replace("/", "_"), batch)


class ApplyParked(beam.PTransform):
    """Apply a Judge that waits for a global value (counts, cuts, centroids) as a side input.

    A runner holds a PCollection that waits for a side input until the value exists (the whole
    pool, images included, in memory on FnApiRunner); here each batch waits on storage under
    `<output>/_spill/` and only its name travels.
    """

    def __init__(self, judge: Judge, output: str, *side_inputs, label: str | None = None):
        super().__init__(label)
        self.judge = judge
        self.output = output
        self.side_inputs_ = side_inputs
        # files are named by this instance, not its short label: two stages may share a label,
        # and a retried bundle must read its own stage's file
        self.park_name = f"{judge.name}-{uuid.uuid4().hex[:8]}"

    def expand(self, batches):
        out = apply_judge(park(batches, self.output, self.park_name), self.judge, *self.side_inputs_, label="Apply")
        return StageOutput(out.kept, [out[DROPPED]])
