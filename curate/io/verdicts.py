"""How a judged batch leaves a step: its kept samples flow on, its drops become ledger rows.

The lowest piece of the stage contract, shared by the reader, the stages and the writer: the
DROPPED output tag, one Beam counter per reason (`dropped_<stage>:<detail>`), and the
StageOutput every step returns.
"""
from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from curate.io.ledger_batch import ledger_batch
from curate.sample import SampleBatch

DROPPED = "dropped"
METRICS_NAMESPACE = "curate"


def reason(stage_name: str, detail: str) -> str:
    """A drop's ledger reason, the one place it is spelled: `<stage name>:<detail>`."""
    return f"{stage_name}:{detail}"


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
    kept = [i for i, r in enumerate(reasons) if r is None]
    if len(kept) == len(batch):
        batch.origin = None
        if kept:
            yield batch
        return
    dropped = [i for i, r in enumerate(reasons) if r is not None]
    why = [reasons[i] for i in dropped]
    for reason, n in Counter(why).items():
        counters.dropped(reason, n)
    if kept:
        yield batch.take(kept)
    yield beam.pvalue.TaggedOutput(DROPPED, (batch.id, ledger_batch(batch.take(dropped), why)))


class StageOutput(NamedTuple):
    """What a step returns: kept batches, dropped-row PCollections, run facts.

    `facts` (optional) is a PCollection of one dict that ends in stats.json under the step's label.
    """

    kept: beam.PCollection
    dropped: list
    facts: beam.PCollection | None = None
