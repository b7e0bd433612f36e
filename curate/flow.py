"""A run's graph, the same for every run: read, apply the recipe's stages in order, write.

Every stage has one shape (a StageOutput), so the Flow keeps the bookkeeping: each stage's
dropped rows go to the ledger, its facts to stats.json under its label, its declared columns
to the ledger schema.
"""
from __future__ import annotations

import apache_beam as beam

from curate.io.outputs import OutputConfig, write_outputs
from curate.io.source import ReadSamples
from curate.io.run_schema import build_schema
from curate.io.verdicts import StageOutput
from curate.run_context import RunContext
from curate.stage import Stage


class Flow:
    def __init__(self, p: beam.Pipeline, run: RunContext, header: dict, stages: list[Stage] = ()):
        self.p = p
        self.run = run
        self.options = run.options
        self.curate = run.curate
        self.source = run.source
        self.output = run.output
        self.header = header
        self.stages = list(stages)
        self.dropped: list = []
        self.facts: dict[str, beam.PCollection] = {}
        self.fields: dict = {}

    @property
    def downloads(self) -> bool:
        return self.run.downloads

    def build(self) -> None:
        """The whole graph of the run's stages, ending in the writer."""
        kept = self.read()
        for stage in self.stages:
            kept = self.apply(stage, kept)
        self.write(kept)

    def read(self) -> beam.PCollection:
        return self._take("Read", self.p | "Read" >> ReadSamples(self.source, self.curate.batch_size))

    def apply(self, stage: Stage, batches: beam.PCollection) -> beam.PCollection:
        self.fields.update(stage.fields)
        return self._take(stage.step, batches | stage.step >> stage)

    def _take(self, label: str, out: StageOutput) -> beam.PCollection:
        self.dropped.extend(out.dropped)
        if out.facts is not None:
            self.facts[label] = out.facts
        return out.kept

    def schema(self):
        """The ledger / sidecar schema of the run: core columns, the stages' fields, input columns."""
        return build_schema(self.fields, self.source.extra_columns())

    def write(self, kept: beam.PCollection) -> beam.PCollection:
        cfg = OutputConfig(self.output, self.schema(), self.curate.output_format,
                           self.curate.samples_per_shard, self.header, self.source.url_caption_columns(),
                           self.run.started)
        return write_outputs(self.p, kept, self.dropped, self.facts, cfg)
