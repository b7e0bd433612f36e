"""The one shape of every stage: batches in, kept batches and dropped ledger rows out.

A stage judges samples; what it keeps flows on in a batch with the same id, what it drops
leaves on the DROPPED output as `(ledger_part, Arrow record batch of ledger rows)` with reason
`stage:detail`,
counted per reason with Beam metrics. A failure on one sample is a drop, never a crash.
"""
from __future__ import annotations

import uuid
from typing import Iterable, NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from curate import coders  # noqa: F401  (registers the SampleBatch coder)
from curate.io.ledger_batch import samples_to_batch
from curate.sample import Sample, SampleBatch

DROPPED = "dropped"
METRICS_NAMESPACE = "curate"


class ReasonCounters:
    """Beam counters created once per reason (a counter object per sample would be slow)."""

    def __init__(self):
        self._counters = {}

    def inc(self, name: str, n: int = 1) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(METRICS_NAMESPACE, name)
        counter.inc(n)


def split_batch(batch: SampleBatch, reasons: list[str | None], counters: ReasonCounters):
    """Yield the kept batch (if any) and the dropped rows (if any) of one judged batch."""
    kept, dropped, why = [], [], []
    for sample, reason in zip(batch.samples, reasons):
        if reason is None:
            kept.append(sample)
        else:
            counters.inc(f"dropped_{reason}")
            dropped.append(sample)
            why.append(reason)
    if kept:
        yield SampleBatch(batch.id, kept)
    if dropped:
        yield beam.pvalue.TaggedOutput(DROPPED, (batch.ledger_part, samples_to_batch(dropped, why)))


class SampleStage(beam.DoFn):
    """Base DoFn: override `judge` (one sample) or `judge_batch` (all samples of a batch).

    `judge` returns None to keep the sample, or a short detail that becomes the reason
    `<name>:<detail>`. It may record values on `sample.values` before the fate is decided.
    """

    name = "stage"
    fields: dict[str, pa.DataType] = {}  # ledger columns this stage adds, with their types

    def setup(self):
        self.counters = ReasonCounters()

    def judge(self, sample: Sample) -> str | None:
        raise NotImplementedError

    def judge_batch(self, samples: list[Sample]) -> list[str | None]:
        return [self._judge_safely(s) for s in samples]

    def _judge_safely(self, sample: Sample) -> str | None:
        try:
            return self.judge(sample)
        except Exception as e:  # bad data never crashes a run: it becomes a ledger row
            return f"error_{type(e).__name__}"

    def process(self, batch: SampleBatch, *side_inputs) -> Iterable:
        details = self.judge_batch(batch.samples, *side_inputs) if side_inputs else self.judge_batch(batch.samples)
        reasons = [None if d is None else f"{self.name}:{d}" for d in details]
        self.counters.inc(f"{self.name}_in", len(batch.samples))
        yield from split_batch(batch, reasons, self.counters)


class StageOutput(NamedTuple):
    """What a stage transform returns: kept batches, dropped-row PCollections, run facts.

    `facts` (optional) is a PCollection of one dict that ends in stats.json under the stage's name.
    """

    kept: beam.PCollection
    dropped: list
    facts: beam.PCollection | None = None


class ApplyStage(beam.PTransform):
    """Apply a SampleStage; returns a StageOutput."""

    def __init__(self, dofn: SampleStage, *side_inputs, label: str | None = None):
        super().__init__(label or dofn.name)
        self.dofn = dofn
        self.side_inputs = side_inputs
        self.fields = dict(dofn.fields)

    def expand(self, batches):
        out = batches | beam.ParDo(self.dofn, *self.side_inputs).with_output_types(
            SampleBatch).with_outputs(DROPPED, main="kept")
        return StageOutput(out.kept, [out[DROPPED]])


class Unparked(beam.DoFn):
    """Runs a SampleStage on parked batches: fetches each one, then judges it as usual."""

    def __init__(self, dofn: SampleStage):
        self.dofn = dofn

    def setup(self):
        self.dofn.setup()

    def teardown(self):
        self.dofn.teardown()

    def process(self, ref, *side_inputs):
        from curate.io.spill import fetch_batch

        yield from self.dofn.process(fetch_batch(ref), *side_inputs)


class ApplyParked(ApplyStage):
    """ApplyStage for a stage that waits for a global value (counts, cuts, centroids).

    A runner holds a PCollection that waits for a side input until the value exists (the whole
    pool, images included, in memory on FnApiRunner); here each batch waits on storage under
    `<output>/_spill/` and only its name travels.
    """

    def __init__(self, dofn: SampleStage, output: str, *side_inputs, label: str | None = None):
        super().__init__(dofn, *side_inputs, label=label)
        self.output = output
        # files are named by this instance, not its short label: two stages may share a label,
        # and a retried bundle must read its own stage's file
        self.park_name = f"{dofn.name}-{uuid.uuid4().hex[:8]}"

    def expand(self, batches):
        return park_and_apply(batches, self.dofn, self.output, self.park_name, *self.side_inputs)


def park_and_apply(batches, dofn: SampleStage, output: str, name: str, *side_inputs) -> StageOutput:
    refs = batches | "Park" >> beam.Map(park_batch_as, output, name)
    out = refs | "Apply" >> beam.ParDo(Unparked(dofn), *side_inputs).with_output_types(
        SampleBatch).with_outputs(DROPPED, main="kept")
    return StageOutput(out.kept, [out[DROPPED]])


def park_batch_as(batch: SampleBatch, output: str, name: str):
    from curate.io.spill import park_batch

    return park_batch(output, name.replace("/", "_"), batch)
