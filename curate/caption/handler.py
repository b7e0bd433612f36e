"""Beam RunInference glue for CoCa captions: a ModelHandler whose examples are SampleBatches.

As the scoring handler: an element is a whole SampleBatch; inside a call the images run through
`generate` in chunks of `--caption_batch_size`, the next chunk decoding on CPU threads while the
current one is on the model. A sample without an image passes uncaptioned (a kept URL-only row);
an undecodable image gets `decode_error`; a chunk whose generate raises is retried image by
image, and the images that still fail get `generate_error` (the others keep their captions:
a caption does not depend on its batch). An exception escaping the whole call goes to
RunInference's dead-letter output and from there to the ledger.
"""
from __future__ import annotations

import logging

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from apache_beam.ml.inference.base import PredictionResult

from curate.caption.names import DECODE_ERROR, GENERATE_ERROR, METRICS_NAMESPACE, NO_IMAGE
from curate.caption.settings import CaptionSettings
from curate.models.coca import CocaModel, sample_seed
from curate.sample import Sample, SampleBatch
from curate.score.handler import OpenClipHandler, chunks_of, decode_pool, model_inputs, prepared_ahead

log = logging.getLogger(__name__)


@dataclass
class BatchCaptions:
    """One SampleBatch's result: captions (a list per sample, None where none) and error details."""

    captions: list
    errors: list


class CocaHandler(OpenClipHandler):
    """The scoring handler's batching, sharing and decode pool, with CoCa's generate as the model call."""

    def __init__(self, settings: CaptionSettings):
        super().__init__(settings.spec, settings.run)
        self.settings = settings

    def load_model(self):
        return CocaModel(self.settings.spec, self.run.device, self.run.precision, self.run.torch_threads)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    def run_inference(self, batch: Sequence[SampleBatch], model, inference_args=None) -> Iterable[PredictionResult]:
        samples = [s for b in batch for s in b.samples]
        errors = [None if s.image is not None else NO_IMAGE for s in samples]
        captions: list = [None] * len(samples)
        todo = [i for i, e in enumerate(errors) if e is None]
        for chunk, ready in prepared_ahead(chunks_of(todo, self.run.batch_size),
                                           lambda c: self._decode(c, samples, model)):
            self._caption(chunk, ready, samples, model, captions, errors)
        out, start = [], 0
        for b in batch:
            end = start + len(b.samples)
            out.append(PredictionResult(b, BatchCaptions(captions[start:end], errors[start:end])))
            start = end
        return out

    def _decode(self, chunk: list[int], samples: list[Sample], model) -> list:
        inputs = model_inputs(self.settings.spec, model)
        return [decode_pool(self.run.decode_threads).submit(inputs.pixels, samples[i].image) for i in chunk]

    def _seeds(self, sample: Sample) -> list[int] | None:
        s = self.settings
        return [sample_seed(sample.uid, s.seed, k) for k in range(s.captions_per_image)]

    def _caption(self, chunk, futures, samples, model, captions, errors) -> None:
        rows, pixels = [], []
        for i, future in zip(chunk, futures):
            try:
                pixels.append(future.result())
                rows.append(i)
            except Exception:  # noqa: BLE001 (any undecodable image is one failed sample)
                errors[i] = DECODE_ERROR
        if not rows:
            return
        params = self.settings.params
        seeds = [self._seeds(samples[i]) for i in rows] if params.sampled else None
        try:
            ids = model.generate(np.stack(pixels), params, seeds)
        except Exception as e:  # noqa: BLE001 (find the image that fails; the rest keep their captions)
            log.warning("caption: generation failed on %d images (%s: %s); retrying one by one",
                        len(rows), type(e).__name__, e)
            ids = []
            for j in range(len(rows)):
                try:
                    ids.extend(model.generate(np.stack(pixels[j:j + 1]), params, None if seeds is None else seeds[j:j + 1]))
                except Exception as e:  # noqa: BLE001
                    log.warning("caption: generation failed on one image (%s: %s)", type(e).__name__, e)
                    ids.append(None)
        for i, per_image in zip(rows, ids):
            if per_image is None:
                errors[i] = GENERATE_ERROR
            else:
                captions[i] = model.texts([per_image])[0]
