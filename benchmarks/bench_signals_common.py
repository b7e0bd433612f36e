"""Shared by the signal benchmarks: each signal's per-image cost beside the scoring model's.

Every model is the published architecture at its real size, random-init (weights do not change
speed): open_clip CLIP towers, LAION's heads, timm efficientnet_b3a (watermark), a transformers
ViT-B/16 image classifier (Falconsai/nsfw_image_detection's shape), PaddleOCR's PP-OCRv4 text
detector as rapidocr-onnxruntime ships it (its real weights). Images are the bundled COCO photos
(~640x480) repeated.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_score_common import random_model, samples  # noqa: E402

from curate.sample import SampleBatch
from curate.ledger_layout import batch_id  # noqa: E402


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int = 1) -> float:
    """Seconds of one call of fn (the median of `repeats`), after a warm-up call."""
    fn()
    _sync(device)
    spent = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        spent.append(time.perf_counter() - t0)
    return float(np.median(spent))


def write_models(folder: str, clip: str, classifier_size: str) -> dict:
    """Random-init files of every signal model (and the CLIP config) under `folder`."""
    import transformers

    from curate.models.heads import HEADS, write_random_head
    from curate.models.tiny_signals import write_tiny_signals
    from curate.models.watermark import write_random_watermark_model

    if clip == "tiny":  # a tiny CLIP with ViT-L/14's 768-d embeddings, what the heads read
        from curate.models.resolve import resolve

        files = write_tiny_signals(os.path.join(folder, "tiny-signals"))
        files["clip"] = resolve("clip", files["--signal_clip_model"], files["--signal_clip_pretrained"])
    else:
        files = {"clip": random_model(clip, folder)}
        files["--nsfw_weights"] = write_random_head(HEADS["laion-l14"], os.path.join(folder, "nsfw.pth"))
        files["--aesthetic_weights"] = write_random_head(HEADS["laion-v2"], os.path.join(folder, "aesthetic.pth"))
        files["--watermark_weights"] = write_random_watermark_model(os.path.join(folder, "watermark.pt"))
    folder_vit = os.path.join(folder, "vit-classifier")
    if classifier_size == "base":  # ViTForImageClassification at Falconsai's size (ViT-B/16, 224)
        config = transformers.ViTConfig(image_size=224, patch_size=16, id2label={0: "normal", 1: "nsfw"},
                                        label2id={"normal": 0, "nsfw": 1})
        transformers.ViTForImageClassification(config).save_pretrained(folder_vit)
        transformers.ViTImageProcessor(size={"height": 224, "width": 224}, image_mean=[0.5] * 3,
                                       image_std=[0.5] * 3).save_pretrained(folder_vit)
    else:
        from curate.models.image_classifier import write_tiny_image_classifier
        write_tiny_image_classifier(folder_vit)
    files["classifier"] = folder_vit
    return files


def component_costs(files: dict, device: str, precision: str, n: int, batch: int) -> dict:
    """Seconds per image of each model (its CPU input preparation and its forward pass apart)."""
    from PIL import Image
    import io

    from curate.models.clip import ClipInputs, ClipModel, autocast_dtype, pick_device
    from curate.models.heads import HEADS, apply_head, load_head
    from curate.models.image_classifier import ClassifierInputs, ClassifierSpec, ImageClassifier
    from curate.models.text_boxes import TextDetector, masked_pixels, text_area
    from curate.models.watermark import WatermarkModel, watermark_pixels

    device = pick_device(device)
    dtype = autocast_dtype(device, precision)
    items = samples(n)
    images = [Image.open(io.BytesIO(s.image)) for s in items]
    for image in images:
        image.load()
    spec = files["clip"]
    clip = ClipModel(spec, device, precision)
    inputs = ClipInputs(spec, clip.input_config())
    pixels = np.stack([inputs.pixels(s.image) for s in items[:batch]])
    tokens = inputs.tokens([s.caption for s in items[:batch]])
    costs = {"decode+resize (CLIP input)": timed(lambda: [inputs.pixels(s.image) for s in items], device) / n,
             "scoring model (image+caption)": timed(lambda: clip.embed(pixels, tokens), device) / batch,
             "signal CLIP (image only)": timed(lambda: clip.embed_images(pixels), device) / batch}
    embeddings = clip.embed_images(pixels)
    for name, flag in (("laion-l14", "--nsfw_weights"), ("laion-v2", "--aesthetic_weights")):
        head = load_head(HEADS[name], files[flag]).to(device)
        if HEADS[name].dim == embeddings.shape[1]:
            costs[f"head {name}"] = timed(lambda: apply_head(head, embeddings, device), device, 5) / batch
    watermark = WatermarkModel(files["--watermark_weights"], device, dtype)
    costs["watermark input (256x256)"] = timed(lambda: [watermark_pixels(im) for im in images], device) / n
    wm_pixels = np.stack([watermark_pixels(im) for im in images[:batch]])
    costs["watermark efficientnet_b3a"] = timed(lambda: watermark.probabilities(wm_pixels), device) / batch
    cspec = ClassifierSpec(files["classifier"], "nsfw", "--nsfw_model")
    cinputs, classifier = ClassifierInputs(cspec), ImageClassifier(cspec, device, dtype)
    costs["classifier input (processor)"] = timed(lambda: [cinputs.pixels(im) for im in images], device) / n
    c_pixels = np.stack([cinputs.pixels(im) for im in images[:batch]])
    costs["classifier ViT forward"] = timed(lambda: classifier.probabilities(c_pixels), device) / batch
    detector = TextDetector()
    rgbs = [np.asarray(im.convert("RGB")) for im in images]
    costs["text detector (PP-OCRv4 det, CPU)"] = timed(
        lambda: [text_area(detector.boxes(rgb), *rgb.shape[:2]) for rgb in rgbs], device) / n
    costs["T-MARS inputs (detect+mask+2 preprocess)"] = timed(
        lambda: [masked_pixels(s.image, inputs, "default") for s in items], device) / n
    return costs


def handler_seconds(files: dict, device: str, precision: str, n: int, batch: int, reuse: bool) -> float:
    """Seconds per image of the signals stage's handler (no Beam) with every signal on."""
    from curate.models.heads import HEADS
    from curate.models.signal_models import HeadPlan, SignalModels, SignalPlan
    from curate.score.inference import InferenceSettings
    from curate.signals.handler import SignalsHandler
    from curate.signals.settings import SignalSettings

    plan = SignalPlan(heads={"nsfw_score": HeadPlan(HEADS["laion-l14"], files["--nsfw_weights"], "--nsfw_weights"),
                             "aesthetic_score": HeadPlan(HEADS["laion-v2"], files["--aesthetic_weights"],
                                                         "--aesthetic_weights")},
                      clip=files["clip"], embed_here=not reuse, watermark="watermark_score",
                      watermark_weights=files["--watermark_weights"], text_area="text_area", text_detector="default")
    inference = InferenceSettings(device=device, precision=precision, batch_size=batch, rows_per_batch=max(batch, n))
    handler = SignalsHandler(SignalSettings(plan, inference, "clip_embedding" if reuse else None))
    model = SignalModels(plan, device, precision)
    items = samples(n)
    if reuse:  # as the scoring stage leaves them
        for s in items:
            s.vectors["clip_embedding"] = np.random.default_rng(0).normal(size=768).astype(np.float16)
    batches = [SampleBatch(batch_id(0, 0), items)]
    return timed(lambda: handler.run_inference(batches, model), device) / n
