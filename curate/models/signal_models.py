"""Every signal model of a run, as one object a worker loads once, and the CPU side that feeds it.

`SignalPlan` says what to compute (picklable, torch-free): LAION heads on the image embedding of
one CLIP model (computed here, or handed in: the scoring stage's embedding of the same model),
the watermark detector, transformers image classifiers, the text detector. `SignalInputs`
decodes each image once on a decode thread and makes every model's input from it (and the text
area: the detector runs there, on CPU); `SignalModels` runs the models on the device and counts
each model's calls, samples and seconds, so a run can show which models ran on what.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from curate.models.heads import HeadSpec
from curate.models.image_classifier import ClassifierSpec
from curate.models.spec import ModelSpec

CLIP = "clip"  # usage key of the signal CLIP model
REUSED = "reused"  # usage key: samples whose embedding came from the scoring stage
WATERMARK = "watermark"
TEXT = "text_detector"
_LOCK = threading.Lock()


@dataclass(frozen=True)
class HeadPlan:
    spec: HeadSpec
    weights: str | None  # the file the user named; None: the published one
    flag: str  # --nsfw_weights / --aesthetic_weights


@dataclass(frozen=True)
class SignalPlan:
    heads: dict[str, HeadPlan] = field(default_factory=dict)  # column -> head on the CLIP embedding
    clip: ModelSpec | None = None  # the CLIP model the heads read (needed unless every embedding is handed in)
    embed_here: bool = True  # False: the scoring stage's embedding of `clip` is on each sample
    classifiers: dict[str, ClassifierSpec] = field(default_factory=dict)  # column -> transformers checkpoint
    watermark: str | None = None  # column of LAION's watermark detector, or None
    watermark_weights: str | None = None
    text_area: str | None = None  # column of the text area, or None
    text_detector: str | None = None

    @property
    def columns(self) -> list[str]:
        return [*self.heads, *self.classifiers, *([self.watermark] if self.watermark else []),
                *([self.text_area] if self.text_area else [])]


def _clip_classes(spec: ModelSpec):
    from curate.models.resolve import TRANSFORMERS

    if spec.kind == TRANSFORMERS:
        from curate.models.hf_clip import HfClipInputs, HfClipModel
        return HfClipModel, HfClipInputs
    from curate.models.clip import ClipInputs, ClipModel
    return ClipModel, ClipInputs


class SignalModels:
    """The plan's models on one device: `run(inputs, embeddings)` -> values per column, usage."""

    def __init__(self, plan: SignalPlan, device: str = "auto", precision: str = "auto", threads: int = 0):
        from curate.models.clip import autocast_dtype, pick_device, set_cpu_threads
        from curate.models.heads import load_head
        from curate.models.watermark import URL, WatermarkModel
        from curate.models.weights import weights_file

        self.plan = plan
        self.device = pick_device(device)
        if self.device == "cpu":
            set_cpu_threads(threads)
        dtype = autocast_dtype(self.device, precision)
        self.clip = None
        if plan.clip is not None and plan.embed_here:
            self.clip = _clip_classes(plan.clip)[0](plan.clip, self.device, precision, threads)
        self.heads = {column: load_head(h.spec, weights_file(h.weights, h.spec.url, h.flag, f"{h.spec.signal} "
                                                                f"{h.spec.name}")).to(self.device)
                      for column, h in plan.heads.items()}
        self.watermark = None
        if plan.watermark:
            path = weights_file(plan.watermark_weights, URL, "--watermark_weights", "the watermark detector")
            self.watermark = WatermarkModel(path, self.device, dtype)
        from curate.models.image_classifier import ImageClassifier

        self.classifiers = {column: ImageClassifier(spec, self.device, dtype)
                            for column, spec in plan.classifiers.items()}

    def input_config(self) -> dict:
        """What a worker process needs to build matching SignalInputs (picklable, small)."""
        return {CLIP: None if self.clip is None else self.clip.input_config()}

    def run(self, inputs: list[dict], embeddings: np.ndarray | None) -> tuple[dict, dict]:
        """Per column a float32 [n] of values for n decoded images (`inputs`, SignalInputs.prepare's
        dicts); `embeddings` [n, d]: the heads' input when handed in. Usage: model -> [calls,
        samples, seconds] of this call."""
        n = len(inputs)
        values, usage = {}, {}

        def timed(name, fn, *args):
            started = time.perf_counter()
            out = fn(*args)
            usage[name] = [1, n, time.perf_counter() - started]
            return out

        if self.heads:
            if embeddings is None:
                embeddings = timed(CLIP, self.clip.embed_images, np.stack([x[CLIP] for x in inputs]))
            else:
                usage[REUSED] = [0, n, 0.0]
            from curate.models.heads import apply_head

            for column, head in self.heads.items():
                values[column] = timed(column, apply_head, head, embeddings, self.device)
        if self.watermark is not None:
            values[self.plan.watermark] = timed(WATERMARK, self.watermark.probabilities,
                                                np.stack([x[WATERMARK] for x in inputs]))
        for column, classifier in self.classifiers.items():
            values[column] = timed(column, classifier.probabilities, np.stack([x[column] for x in inputs]))
        if self.plan.text_area:  # measured on the decode threads
            values[self.plan.text_area] = np.array([x[TEXT] for x in inputs], dtype=np.float32)
        return values, usage


class SignalInputs:
    """CPU side, per process: image bytes -> every model's input (decoded once) and the text area."""

    def __init__(self, plan: SignalPlan, config: dict):
        from curate.models.image_classifier import ClassifierInputs

        self.plan = plan
        self.clip = None
        if plan.heads and plan.embed_here:
            self.clip = _clip_classes(plan.clip)[1](plan.clip, config[CLIP])
        self.classifiers = {column: ClassifierInputs(spec) for column, spec in plan.classifiers.items()}

    def prepare(self, data: bytes) -> dict:
        from curate.models.text_boxes import decoded_rgb, process_detector, text_area
        from curate.models.watermark import watermark_pixels

        image, rgb = decoded_rgb(data)
        out = {}
        if self.clip is not None:
            out[CLIP] = self.clip.pixels_of(image)
        if self.plan.watermark:
            out[WATERMARK] = watermark_pixels(image)
        for column, inputs in self.classifiers.items():
            out[column] = inputs.pixels(image)
        if self.plan.text_area:
            boxes = process_detector(self.plan.text_detector).boxes(rgb)
            out[TEXT] = text_area(boxes, *rgb.shape[:2])
        return out


_INPUTS: dict = {}


def process_inputs(plan: SignalPlan, models) -> SignalInputs:
    """SignalInputs for this process, matching the (possibly shared, remote) models' preprocessing."""
    key = repr(plan)  # the plan holds dicts: its repr is the key
    with _LOCK:
        inputs = _INPUTS.get(key)
    if inputs is None:
        inputs = SignalInputs(plan, models.input_config())
        with _LOCK:
            inputs = _INPUTS.setdefault(key, inputs)
    return inputs
