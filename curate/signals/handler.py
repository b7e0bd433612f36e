"""Beam RunInference glue for the signal models: the scoring handler's batching, model sharing and
decode overlap, with `SignalModels` as the model.

An element is a whole SampleBatch. Inside a call the images run in chunks of `--score_batch_size`,
the next chunk decoding (and, with a text detector, detecting text) on the CPU threads while the
current one is on the models. A sample without an image passes with no signal; an undecodable one
gets `decode_error`; when the scoring stage's embedding of the heads' CLIP model is on a sample,
the heads read it and the CLIP model is never called for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from apache_beam.ml.inference.base import PredictionResult

from curate.models.signal_models import SignalModels, process_inputs
from curate.sample import SampleBatch
from curate.score.handler import OpenClipHandler, chunks_of, decode_pool, prepared_ahead
from curate.signals.names import DECODE_ERROR, METRICS_NAMESPACE
from curate.signals.settings import SignalSettings

NO_IMAGE = "no_image"  # not a drop: the sample passes without signals
NO_EMBEDDING = "no_embedding"  # not a drop: the heads' values stay empty


@dataclass
class BatchSignals:
    """One SampleBatch's result: values per column (NaN where none) and a detail per sample."""

    values: dict
    errors: list
    usage: dict = field(default_factory=dict)  # model -> [calls, samples, seconds]: the call's, on its first batch


class SignalsHandler(OpenClipHandler):
    def __init__(self, settings: SignalSettings):
        super().__init__(settings.plan.clip, settings.inference)
        self.settings = settings

    def load_model(self):
        inference = self.inference
        return SignalModels(self.settings.plan, inference.device, inference.precision, inference.torch_threads)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    def run_inference(self, batch: Sequence[SampleBatch], model, inference_args=None) -> Iterable[PredictionResult]:
        samples = [s for b in batch for s in b.samples]
        plan, reuse = self.settings.plan, self.settings.reuse
        errors = [None if s.image is not None else NO_IMAGE for s in samples]
        values = {c: np.full(len(samples), np.nan, dtype=np.float32) for c in plan.columns}
        usage: dict = {}
        todo = [i for i, e in enumerate(errors) if e is None]
        inputs = process_inputs(plan, model)
        pool = decode_pool(self.inference.decode_threads)
        prepare = lambda chunk: [pool.submit(inputs.prepare, samples[i].image) for i in chunk]  # noqa: E731
        for chunk, futures in prepared_ahead(chunks_of(todo, self.inference.batch_size), prepare):
            decoded = []
            for i, future in zip(chunk, futures):
                try:
                    decoded.append((i, future.result()))
                except Exception:  # noqa: BLE001 (any undecodable image is one failed sample)
                    errors[i] = DECODE_ERROR
            if reuse and plan.heads:
                for i, _ in decoded:
                    if reuse not in samples[i].vectors:
                        errors[i] = NO_EMBEDDING
                decoded = [(i, x) for i, x in decoded if errors[i] is None]
            if not decoded:
                continue
            rows = [i for i, _ in decoded]
            embeddings = None
            if reuse and plan.heads:  # the scoring stage's fp16 embedding of the same model
                embeddings = np.stack([samples[i].vectors[reuse] for i in rows]).astype(np.float32)
            chunk_values, chunk_usage = model.run([x for _, x in decoded], embeddings)
            for column, array in chunk_values.items():
                values[column][rows] = array
            for name, (calls, n, seconds) in chunk_usage.items():
                total = usage.setdefault(name, [0, 0, 0.0])
                total[0], total[1], total[2] = total[0] + calls, total[1] + n, total[2] + seconds
        out, start = [], 0
        for k, b in enumerate(batch):
            end = start + len(b)
            out.append(PredictionResult(b, BatchSignals({c: v[start:end] for c, v in values.items()},
                                                        errors[start:end], usage if k == 0 else {})))
            start = end
        return out
