"""Beam coder for SampleBatch: columns pickled whole (Arrow arrays as buffers), and a size estimate that does
not encode (Beam samples element sizes for its metrics, encoding the first elements of every
PCollection otherwise, which for a few large batches means encoding all of them again)."""
from __future__ import annotations

import pickle

import apache_beam as beam

from curate.sample import SampleBatch, rebuild_batch

_ROW_BYTES = 200  # a rough per-sample size for metrics; images are counted exactly


class SampleBatchCoder(beam.coders.Coder):
    def encode(self, batch: SampleBatch) -> bytes:
        return pickle.dumps(batch.state(), protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, data: bytes) -> SampleBatch:
        return rebuild_batch(pickle.loads(data))

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, batch: SampleBatch) -> int:
        return _ROW_BYTES * len(batch) + batch.image_bytes()

    def to_type_hint(self):
        return SampleBatch


beam.coders.registry.register_coder(SampleBatch, SampleBatchCoder)


class PredictionResultCoder(beam.coders.Coder):
    """RunInference's results carry the SampleBatch they scored: the same fast path, and a size
    estimate without pickling the images (Beam samples output sizes by encoding otherwise)."""

    def encode(self, result) -> bytes:
        example = result.example
        if isinstance(example, SampleBatch):
            example = ("SampleBatch", example.state())
        return pickle.dumps((example, result.inference, result.model_id), protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, data: bytes):
        from apache_beam.ml.inference.base import PredictionResult

        example, inference, model_id = pickle.loads(data)
        if isinstance(example, tuple) and len(example) == 2 and example[0] == "SampleBatch":
            example = rebuild_batch(example[1])
        return PredictionResult(example, inference, model_id)

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, result) -> int:
        example = result.example
        if isinstance(example, SampleBatch):
            return SampleBatchCoder().estimate_size(example) + _ROW_BYTES
        return _ROW_BYTES

    def to_type_hint(self):
        from apache_beam.ml.inference.base import PredictionResult

        return PredictionResult


def typed_results(results):
    """Give RunInference's output its coder (results would otherwise be pickled, images and all,
    each time Beam samples an element's size); returns the same PCollection."""
    from apache_beam.ml.inference.base import PredictionResult

    beam.coders.registry.register_coder(PredictionResult, PredictionResultCoder)
    results.element_type = PredictionResult
    return results
