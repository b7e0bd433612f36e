"""Beam RunInference glue for captions: ModelHandlers whose examples are SampleBatches.

As the scoring handler: an element is a whole SampleBatch; inside a call the images run through
`generate` in chunks of `--caption_batch_size`, the next chunk decoding (and, for a transformers
model, going through its processor) on CPU threads while the current one is on the model. A sample
without an image passes uncaptioned (a kept URL-only row); an image that cannot be decoded or
preprocessed gets `decode_error`; a chunk whose generate raises is retried image by image, and
the images that still fail get `generate_error` (the others keep their captions: a caption does
not depend on its batch). An exception escaping the whole call goes to RunInference's dead-letter
output and from there to the ledger.

`CocaHandler` runs an open_clip CoCa (uint8 pixels stacked); `VlmHandler` a transformers
vision-language model (the checkpoint's processor on the chunk, a row per caption);
`VllmHandler` the same checkpoint on vLLM.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from apache_beam.ml.inference.base import PredictionResult

from curate.caption.names import DECODE_ERROR, GENERATE_ERROR, METRICS_NAMESPACE, NO_IMAGE
from curate.caption.settings import CaptionSettings
from curate.models.generation import sample_seed
from curate.models.worker_inputs import decode_pool, model_inputs
from curate.sample import Sample, SampleBatch
from curate.score.handler import OpenClipHandler

log = logging.getLogger(__name__)


@dataclass
class BatchCaptions:
    """One SampleBatch's result: captions (a list per sample, None where none) and error details."""

    captions: list
    errors: list


@dataclass
class _Chunk:
    """A chunk ready for the model: the samples whose image made model input, and that input."""

    rows: list[int]  # indices (into the call's samples) of the images in `batch`
    failed: list[int]  # indices whose image could not be decoded or preprocessed
    items: list  # per row: the decoded image (what a retry rebuilds one-image input from)
    batch: object  # the model input of all rows; None without rows


class CaptionHandler(OpenClipHandler):
    """The scoring handler's batching, sharing and get_num_bytes, with a captioner's generate as the
    model call. Subclasses say how to load the model, decode one image and collate a chunk."""

    def __init__(self, settings: CaptionSettings):
        super().__init__(settings.spec, settings.inference)
        self.settings = settings

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    # what a subclass provides
    def inputs(self, model):
        """This process's CPU-side inputs object for `model`."""
        raise NotImplementedError

    def decode(self, inputs, data: bytes):
        """One image's bytes -> what `collate` takes (runs on a decode thread)."""
        raise NotImplementedError

    def collate(self, inputs, items: list):
        """Decoded images -> one model input (for a transformers model, the processor's batch)."""
        raise NotImplementedError

    def run_inference(self, batch: Sequence[SampleBatch], model, inference_args=None) -> Iterable[PredictionResult]:
        samples = [s for b in batch for s in b.samples]
        errors = [None if s.image is not None else NO_IMAGE for s in samples]
        captions: list = [None] * len(samples)
        todo = [i for i, e in enumerate(errors) if e is None]
        size = self.inference.batch_size
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        pending = self._prepare(chunks[0], samples, model) if chunks else None
        for k in range(len(chunks)):
            ready = pending.result()  # _prepare_chunk catches per-image failures: this does not raise
            pending = self._prepare(chunks[k + 1], samples, model) if k + 1 < len(chunks) else None
            for i in ready.failed:
                errors[i] = DECODE_ERROR
            if ready.rows:
                self._caption(ready, samples, model, captions, errors)
        out, start = [], 0
        for b in batch:
            end = start + len(b)
            out.append(PredictionResult(b, BatchCaptions(captions[start:end], errors[start:end])))
            start = end
        return out

    def _prepare(self, chunk: list[int], samples: list[Sample], model):
        """Start decoding a chunk's images on the pool, then collating them (a future of a _Chunk).

        The collate task is queued after the chunk's decode tasks, so the pool runs those first:
        it waits only on work already running or done."""
        pool = decode_pool(self.inference.decode_threads)
        inputs = self.inputs(model)
        decoded = [pool.submit(self.decode, inputs, samples[i].image) for i in chunk]
        return pool.submit(self._prepare_chunk, inputs, chunk, decoded)

    def _prepare_chunk(self, inputs, chunk: list[int], decoded: list) -> _Chunk:
        rows, failed, items = [], [], []
        for i, future in zip(chunk, decoded):
            try:
                items.append(future.result())
                rows.append(i)
            except Exception:  # noqa: BLE001 (any undecodable image is one failed sample)
                failed.append(i)
        if not rows:
            return _Chunk([], failed, [], None)
        try:
            return _Chunk(rows, failed, items, self.collate(inputs, items))
        except Exception as e:  # noqa: BLE001 (find the image the processor refuses; the rest go on)
            log.warning("caption: preprocessing failed on %d images (%s: %s); retrying one by one",
                        len(rows), type(e).__name__, e)
        keep = []
        for j, i in enumerate(rows):
            try:
                self.collate(inputs, items[j:j + 1])
                keep.append(j)
            except Exception:  # noqa: BLE001
                failed.append(i)
        rows, items = [rows[j] for j in keep], [items[j] for j in keep]
        return _Chunk(rows, failed, items, self.collate(inputs, items) if rows else None)

    def _seeds(self, sample: Sample) -> list[int]:
        s = self.settings
        return [sample_seed(sample.uid, s.seed, k) for k in range(s.captions_per_image)]

    def _caption(self, ready: _Chunk, samples, model, captions, errors) -> None:
        params = self.settings.params
        seeds = [self._seeds(samples[i]) for i in ready.rows] if params.sampled else None
        try:
            ids = model.generate(ready.batch, params, seeds)
        except Exception as e:  # noqa: BLE001 (find the image that fails; the rest keep their captions)
            log.warning("caption: generation failed on %d images (%s: %s); retrying one by one",
                        len(ready.rows), type(e).__name__, e)
            ids = []
            inputs = self.inputs(model)
            for j in range(len(ready.rows)):
                try:
                    one = self.collate(inputs, ready.items[j:j + 1])
                    ids.extend(model.generate(one, params, None if seeds is None else seeds[j:j + 1]))
                except Exception as e:  # noqa: BLE001
                    log.warning("caption: generation failed on one image (%s: %s)", type(e).__name__, e)
                    ids.append(None)
        for i, per_image in zip(ready.rows, ids):
            if per_image is None:
                errors[i] = GENERATE_ERROR
            else:
                captions[i] = model.texts([per_image])[0]


class CocaHandler(CaptionHandler):
    """open_clip's CoCa: images decoded to the model's uint8 pixels, stacked."""

    def load_model(self):
        from curate.models.coca import CocaModel

        return CocaModel(self.settings.spec, self.inference.device, self.inference.precision, self.inference.torch_threads)

    def inputs(self, model):
        from curate.models.clip import ClipInputs

        spec = self.settings.spec
        return model_inputs((spec.role, spec.name, spec.pretrained), lambda: ClipInputs(spec, model.input_config()))

    def decode(self, inputs, data: bytes):
        return inputs.pixels(data)

    def collate(self, inputs, items: list):
        return np.stack(items)


class VlmHandler(CaptionHandler):
    """A transformers vision-language model: decoded images through the checkpoint's processor, the
    caption prompt beside each, a row per caption (the image repeated when sampling several)."""

    def load_model(self):
        from curate.models.vlm import VlmModel

        return VlmModel(self.settings.spec, self.inference.device, self.inference.precision, self.inference.torch_threads)

    def inputs(self, model):
        from curate.models.vlm import VlmInputs

        s = self.settings
        return model_inputs((s.spec.role, s.spec.name, s.spec.pretrained, s.prompt),
                            lambda: VlmInputs(s.spec, model.input_config(), s.prompt))

    def decode(self, inputs, data: bytes):
        return inputs.image(data)

    def collate(self, inputs, items: list):
        s = self.settings
        return inputs.batch(items, s.captions_per_image if s.params.sampled else 1)


class VllmHandler(VlmHandler):
    """The same checkpoint on vLLM: the chunk is a list of (prompt, image) requests, one per caption."""

    def load_model(self):
        from curate.models.vlm_vllm import VllmModel

        return VllmModel(self.settings.spec, self.inference.device, self.inference.precision)

    def share_model_across_processes(self) -> bool:
        return True  # vLLM holds the whole GPU: one engine per machine, shared by its SDK processes

    def collate(self, inputs, items: list):
        s = self.settings
        return inputs.requests(items, s.captions_per_image if s.params.sampled else 1)


def caption_handler(settings: CaptionSettings) -> tuple[str, CaptionHandler]:
    """(model step name, handler) for the run's captioner."""
    if not settings.transformers:
        return "Model_coca", CocaHandler(settings)
    if settings.engine == "vllm":
        return "Model_vllm", VllmHandler(settings)
    return "Model_vlm", VlmHandler(settings)
