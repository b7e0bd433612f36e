"""Beam RunInference glue for open_clip and transformers CLIPModel checkpoints (one handler: the
two model classes share an interface, see curate/models/hf_clip.py): a ModelHandler whose
examples are SampleBatches. Each result says how many samples the model embedded and for how long.

An element is a whole SampleBatch (the images stay where they are: no per-sample fan-out, no
regrouping). BatchElements groups batches up to `max(score_batch_size, rows per batch)`
samples per call; inside a call the samples run through the model in chunks of
`--score_batch_size`, the next chunk decoding on CPU threads while the current one is on the
model. A sample that cannot be scored (no image, undecodable, no caption) gets an error detail
instead of a score; an exception that escapes a whole call goes to RunInference's dead-letter
output (`.with_exception_handling()`), and from there to the ledger.
"""
from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from curate.models.clip import ClipInputs, ClipModel, cosine, pick_device
from curate.models.resolve import TRANSFORMERS, ModelSpec
from curate.models.worker_inputs import decode_pool, model_inputs
from curate.sample import Sample, SampleBatch
from curate.score.names import DECODE_ERROR, NO_CAPTION, NO_IMAGE, metrics_namespace
from curate.score.inference import InferenceSettings  # noqa: F401  (imported from here too)


@dataclass
class BatchScores:
    """One SampleBatch's result: a score (NaN where none) and embedding row per sample."""

    scores: np.ndarray  # float32 [n]
    embeddings: np.ndarray | None  # float16 [n, d], L2-normalized image embeddings
    errors: list  # None or a detail per sample
    text_embeddings: np.ndarray | None = None  # float16 [n, d], L2-normalized caption embeddings
    model_samples: int = 0  # how many of the batch's samples went through the model
    model_seconds: float = 0.0  # the batch's share of the call's time in the model
    masked_scores: np.ndarray | None = None  # float32 [n] (T-MARS): the score with the image's text masked
    text_areas: np.ndarray | None = None  # float32 [n] (T-MARS): share of the image inside text boxes


def clip_inputs(spec: ModelSpec, model):
    """ClipInputs for this process, matching the (possibly shared, remote) model's preprocessing."""
    return model_inputs((spec.role, spec.name, spec.pretrained),
                        lambda: _model_classes(spec)[1](spec, model.input_config()))


def chunks_of(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i:i + size] for i in range(0, len(indices), size)]


def prepared_ahead(chunks: list, prepare) -> Iterable[tuple[Any, Any]]:
    """(chunk, prepare(chunk)) in order, the next chunk's `prepare` already started (it submits to
    the decode threads) while the caller runs the model on this one."""
    pending = prepare(chunks[0]) if chunks else None
    for k, chunk in enumerate(chunks):
        ready, pending = pending, (prepare(chunks[k + 1]) if k + 1 < len(chunks) else None)
        yield chunk, ready


def _model_classes(spec: ModelSpec) -> tuple[type, type]:
    """(model, inputs) classes: open_clip's, or a transformers CLIPModel's (the same interface)."""
    if spec.kind == TRANSFORMERS:
        from curate.models.hf_clip import HfClipInputs, HfClipModel
        return HfClipModel, HfClipInputs
    return ClipModel, ClipInputs


def _precheck(sample: Sample) -> str | None:
    if sample.image is None:
        return NO_IMAGE
    if not sample.caption:
        return NO_CAPTION
    return None


class OpenClipHandler(ModelHandler[SampleBatch, PredictionResult, Any]):
    """With `text_detector` (T-MARS) each image is also scored with its detected text masked: the
    decode threads find the boxes and mask them, the model embeds both images (one caption pass)."""

    def __init__(self, spec: ModelSpec, inference: InferenceSettings, text_detector: str | None = None):
        per_call = max(inference.batch_size, inference.rows_per_batch)
        super().__init__(min_batch_size=per_call, max_batch_size=per_call, element_size_fn=len,
                         model_copies=max(1, inference.model_copies))
        self.spec = spec
        self.inference = inference
        self.text_detector = text_detector

    def load_model(self):
        model = _model_classes(self.spec)[0]
        return model(self.spec, self.inference.device, self.inference.precision, self.inference.torch_threads)

    def share_model_across_processes(self) -> bool:
        # one model per GPU, shared by the worker's SDK processes; on CPU each process has its own
        return self.inference.model_copies > 0 and pick_device(self.inference.device).startswith("cuda")

    def get_num_bytes(self, batch: Sequence[SampleBatch]) -> int:
        return sum(len(s.image or b"") + len(s.caption or "") for b in batch for s in b.samples)

    def get_metrics_namespace(self) -> str:
        return metrics_namespace(self.spec.role)

    def run_inference(self, batch: Sequence[SampleBatch], model, inference_args=None) -> Iterable[PredictionResult]:
        samples = [s for b in batch for s in b.samples]
        errors = [_precheck(s) for s in samples]
        scores = np.full(len(samples), np.nan, dtype=np.float32)
        masked = np.full(len(samples), np.nan, dtype=np.float32) if self.text_detector else None
        areas = np.full(len(samples), np.nan, dtype=np.float32) if self.text_detector else None
        embeddings = None
        used, seconds = np.zeros(len(samples), dtype=bool), 0.0
        todo = [i for i, e in enumerate(errors) if e is None]
        chunks = chunks_of(todo, self.inference.batch_size)
        for chunk, ready in prepared_ahead(chunks, lambda c: self._prepare(c, samples, model)):
            ok, image, text, spent, tmars = self._embed(chunk, ready, samples, model, errors)
            seconds += spent
            used[ok] = True  # what the model embedded (not the undecodable)
            if not ok:
                continue
            scores[ok] = cosine(image, text)
            if tmars is not None:
                masked[ok], areas[ok] = cosine(tmars[0], text), tmars[1]
            if embeddings is None:
                embeddings = np.zeros((len(samples), image.shape[1]), dtype=np.float16)
                texts = np.zeros((len(samples), text.shape[1]), dtype=np.float16)
            embeddings[ok] = image
            texts[ok] = text
        out, start = [], 0
        for b in batch:
            end = start + len(b)
            rows = None if embeddings is None else embeddings[start:end]
            text_rows = None if embeddings is None else texts[start:end]
            scored = int(used[start:end].sum())
            share = seconds * scored / max(1, int(used.sum()))
            out.append(PredictionResult(b, BatchScores(
                scores[start:end], rows, errors[start:end], text_rows, scored, share,
                None if masked is None else masked[start:end], None if areas is None else areas[start:end])))
            start = end
        return out

    def _prepare(self, chunk: list[int], samples: list[Sample], model) -> tuple[Future, list]:
        """Start tokenizing (and, on the CPU decode path, decoding) a chunk on the thread pool."""
        pool = decode_pool(self.inference.decode_threads)
        inputs = clip_inputs(self.spec, model)
        tokens = pool.submit(inputs.tokens, [samples[i].caption for i in chunk])
        if self.inference.decode == "gpu":
            return tokens, []
        if self.text_detector:  # (pixels, masked pixels, text area) per image
            from curate.models.text_boxes import masked_pixels

            return tokens, [pool.submit(masked_pixels, samples[i].image, inputs, self.text_detector) for i in chunk]
        return tokens, [pool.submit(inputs.pixels, samples[i].image) for i in chunk]

    def _embed(self, chunk, ready, samples, model, errors):
        tokens_future, pixel_futures = ready
        tokens = tokens_future.result()
        started = time.perf_counter()
        if self.inference.decode == "gpu":
            image, text, failed = model.embed_encoded([samples[i].image for i in chunk], tokens)
            bad, tmars = set(failed), None
        else:
            pixels, bad = [], set()
            for j, future in enumerate(pixel_futures):
                try:
                    pixels.append(future.result())
                except Exception:  # noqa: BLE001 (any undecodable image is one failed sample)
                    bad.add(j)
            image = text = tmars = None
            started = time.perf_counter()  # model time only: the decode waits above are not counted
            if pixels and self.text_detector:
                plain, masked, areas = zip(*pixels)
                pixels = list(plain)
                tmars = (model.embed_images(np.stack(masked)), np.array(areas, dtype=np.float32))
            if pixels:
                keep = [j for j in range(len(chunk)) if j not in bad]
                image, text = model.embed(np.stack(pixels), tokens[keep])
        for j in bad:
            errors[chunk[j]] = DECODE_ERROR
        ok = [i for j, i in enumerate(chunk) if j not in bad]
        return ok, image, text, time.perf_counter() - started, tmars
