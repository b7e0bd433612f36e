"""A recipe's view of the graph: read, apply stages, write; drops and facts are collected.

Recipes stay short because every stage has one shape (a StageOutput) and the Flow keeps the
bookkeeping: each stage's dropped rows go to the ledger, its facts to stats.json, its declared
columns to the ledger schema.
"""
from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from curate.inputs import is_bundled_sample
from curate.io.outputs import OutputConfig, write_outputs
from curate.io.source import ReadSamples, Source
from curate.io.run_schema import build_schema
from curate.options import CurateOptions
from curate.stage import StageOutput


class Flow:
    def __init__(self, p: beam.Pipeline, options: PipelineOptions, source: Source, output: str,
                 run_info: dict):
        self.p = p
        self.options = options
        self.curate = options.view_as(CurateOptions)
        self.source = source
        self.output = output
        self.run_info = run_info
        self.dropped: list = []
        self.facts: dict[str, beam.PCollection] = {}
        self.fields: dict = {}
        # summaries of ledger / URL parts a recipe wrote itself (the column-wise text-only graph)
        self.written: dict[str, list[beam.PCollection]] = {"ledger": [], "urls": []}

    def read(self) -> beam.PCollection:
        return self._take("Read", self.p | "Read" >> ReadSamples(self.source, self.curate.batch_size))

    def apply(self, label: str, transform: beam.PTransform, batches: beam.PCollection) -> beam.PCollection:
        self.fields.update(getattr(transform, "fields", {}))
        return self._take(label, batches | label >> transform)

    def _take(self, label: str, out: StageOutput) -> beam.PCollection:
        self.dropped.extend(out.dropped)
        if out.facts is not None:
            self.facts[label] = out.facts
        return out.kept

    @property
    def downloads(self) -> bool:
        """Whether URL-only samples are fetched (off for the offline bundled sample by default)."""
        if self.curate.download is not None:
            return self.curate.download
        return self.curate.input is not None and not is_bundled_sample(self.curate.input)

    def schema(self):
        """The ledger / sidecar schema of the run: core columns, the stages' fields, input columns."""
        return build_schema(self.fields, self.source.extra_columns())

    def write(self, kept: beam.PCollection) -> beam.PCollection:
        cfg = OutputConfig(self.output, self.schema(), self.curate.output_format,
                           self.curate.samples_per_shard, self.run_info, self.source.url_caption_columns())
        return write_outputs(self.p, kept, self.dropped, self.facts, cfg, self.written)
