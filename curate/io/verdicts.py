"""How a judged batch leaves a step: its kept samples flow on, its drops become ledger rows.

The lowest piece of the stage contract, shared by the reader, the stages and the writer: the
DROPPED output tag, one Beam counter per reason (`dropped_<stage>:<detail>`), and the
StageOutput every step returns.
"""
from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from curate.io.ledger_batch import samples_to_batch
from curate.sample import SampleBatch

DROPPED = "dropped"
METRICS_NAMESPACE = "curate"


class ReasonCounters:
    """Beam counters created once per name (a counter object per sample would be slow)."""

    def __init__(self):
        self._counters = {}

    def inc(self, name: str, n: int = 1) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(METRICS_NAMESPACE, name)
        counter.inc(n)

    def dropped(self, reason: str, n: int = 1) -> None:
        """The one metric name of a drop, in every graph: `dropped_<stage>:<detail>`."""
        self.inc(f"dropped_{reason}", n)


def split_batch(batch: SampleBatch, reasons: list[str | None], counters: ReasonCounters):
    """Yield the kept batch (if any) and the dropped rows (if any) of one judged batch."""
    kept, dropped, why = [], [], []
    for sample, reason in zip(batch.samples, reasons):
        if reason is None:
            kept.append(sample)
        else:
            counters.dropped(reason)
            dropped.append(sample)
            why.append(reason)
    if kept:
        yield SampleBatch(batch.id, kept)
    if dropped:
        yield beam.pvalue.TaggedOutput(DROPPED, (batch.ledger_part, samples_to_batch(dropped, why)))


class StageOutput(NamedTuple):
    """What a step returns: kept batches, dropped-row PCollections, run facts.

    `facts` (optional) is a PCollection of one dict that ends in stats.json under the step's label.
    """

    kept: beam.PCollection
    dropped: list
    facts: beam.PCollection | None = None
