"""Beam coder for SampleBatch: samples as tuples pickled in C, and a size estimate that does
not encode (Beam samples element sizes for its metrics, encoding the first elements of every
PCollection otherwise, which for a few large batches means encoding all of them again)."""
from __future__ import annotations

import pickle

import apache_beam as beam

from curate.sample import SampleBatch, batch_state, rebuild_batch

_ROW_BYTES = 200  # a rough per-sample size for metrics; images are counted exactly


class SampleBatchCoder(beam.coders.Coder):
    def encode(self, batch: SampleBatch) -> bytes:
        return pickle.dumps(batch_state(batch), protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, data: bytes) -> SampleBatch:
        return rebuild_batch(*pickle.loads(data))

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, batch: SampleBatch) -> int:
        return sum(_ROW_BYTES + len(s.image or b"") for s in batch.samples)

    def to_type_hint(self):
        return SampleBatch


beam.coders.registry.register_coder(SampleBatch, SampleBatchCoder)
