"""Shared by the caption benchmarks: random-init CoCa models, the Beam graph, a bare generate loop.

Images are the bundled COCO photos repeated (bench_score_common.samples). Models are random-init
open_clip CoCa configs saved as a checkpoint (weights do not change the speed of a fixed number
of steps: --caption_min_length = --caption_max_length - 1 makes every caption full length, so
both sides decode the same number of tokens whatever the random model emits).
"""
from __future__ import annotations

import io
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from bench_score_common import _make_batch, cpu_seconds, samples

from curate.caption.settings import CaptionSettings
from curate.models.coca import TINY_COCA_CONFIG, write_tiny_coca
from curate.models.resolve import resolve

# between the tiny test model and coca_ViT-B-32 (~1.5 s per image on CPU): ~0.2 s per caption here
SMALL_COCA_CONFIG = {
    "embed_dim": 256,
    "vision_cfg": {"image_size": 224, "layers": 4, "width": 256, "patch_size": 32, "head_width": 64,
                   "attentional_pool": True, "attn_pooler_heads": 4, "attn_pooler_queries": 64,
                   "output_tokens": True},
    "text_cfg": {"context_length": 76, "vocab_size": 49408, "width": 256, "heads": 4, "layers": 4,
                 "embed_cls": True, "output_tokens": True},
    "multimodal_cfg": {"context_length": 76, "vocab_size": 49408, "width": 256, "heads": 4, "layers": 4,
                       "attn_pooler_heads": 4, "n_queries": 64, "dim_head": 64},
    "custom_text": True,
}


def random_coca(model: str, folder: str):
    """A resolved spec for a random-init CoCa: 'tiny', 'small' or an open_clip CoCa config name."""
    import open_clip

    config = {"tiny": TINY_COCA_CONFIG, "small": SMALL_COCA_CONFIG}.get(model) or open_clip.get_model_config(model)
    config_path, checkpoint = write_tiny_coca(folder, name=f"bench-{model.lower()}", seed=0, config=config)
    return resolve("caption", config_path, checkpoint)


def graph_seconds(settings: CaptionSettings, n: int) -> tuple[float, float]:
    """(wall, CPU) seconds of a FnApiRunner pipeline captioning n samples (start-up and model load included)."""
    from curate.caption.stage import Caption

    rows = settings.inference.rows_per_batch
    t0, c0 = time.perf_counter(), cpu_seconds()
    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions([])) as p:
        out = p | beam.Create(range((n + rows - 1) // rows)) | beam.Map(_make_batch, n, rows) | Caption(settings)
        _ = out.kept | beam.Map(len) | beam.CombineGlobally(sum)
    return time.perf_counter() - t0, cpu_seconds() - c0


def graph_rates(settings: CaptionSettings, n_small: int, n_large: int) -> tuple[float, float]:
    """Marginal captions per wall second and per process CPU second in the graph (two runs)."""
    samples(n_large)  # read the files once, outside both timings
    small, small_cpu = graph_seconds(settings, n_small)
    large, large_cpu = graph_seconds(settings, n_large)
    captions = (n_large - n_small) * settings.captions_per_image
    return captions / (large - small), captions / (large_cpu - small_cpu)


def graph_rate(settings: CaptionSettings, n_small: int, n_large: int) -> float:
    """Marginal captions/s in the graph: the difference of two runs cancels start-up and model load."""
    return graph_rates(settings, n_small, n_large)[0]


def bare_rate(spec, settings: CaptionSettings, n: int, device: str = "cpu", cpu: bool = False):
    """captions/s of the loop a user writes: PIL preprocess, model.generate per batch, decode to text."""
    import open_clip
    import torch
    from PIL import Image

    from curate.models.clip import autocast_dtype, create_model

    model, preprocess = create_model(spec, device)
    tokenizer = open_clip.get_tokenizer(spec.name)
    dtype = autocast_dtype(device, settings.inference.precision)
    kwargs = settings.params.generate_kwargs()
    items, size, k = samples(n), settings.inference.batch_size, settings.captions_per_image

    def generate(chunk):
        pixels = torch.stack([preprocess(Image.open(io.BytesIO(s.image))) for s in chunk]).to(device)
        with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            out = model.generate(pixels.repeat_interleave(k, 0), **kwargs)
        return [tokenizer.decode(row.tolist()) for row in out.cpu()]

    generate(items[:min(size, 4)])  # warm-up (first-call set-up, transformers imports)
    return timed(generate, items, size, n * k, device, cpu)


def timed(generate, items: list, size: int, captions: int, device: str, cpu: bool):
    """captions per wall second (and per process CPU second with `cpu`) of `generate` over `items`
    in chunks of `size`."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), cpu_seconds()
    for i in range(0, len(items), size):
        generate(items[i:i + size])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall = captions / (time.perf_counter() - t0)
    return (wall, captions / (cpu_seconds() - c0)) if cpu else wall


# -- transformers vision-language captioners ------------------------------------------------------
def vlm_spec(model: str, folder: str, size: str = "tiny"):
    """A resolved spec for a transformers captioner: a checkpoint folder, a hub id already in the
    cache, or a family of curate.models.tiny_vlm (qwen2_vl, llava, blip) written random-init."""
    import os

    from curate.models.spec import CAPTION
    from curate.models.tiny_vlm import FAMILIES, write_tiny_vlm

    if model in FAMILIES:
        model = write_tiny_vlm(os.path.join(folder, f"bench-{model}-{size}"), model, seed=0, size=size)
    return resolve("caption", model, None, task=CAPTION)


def vlm_bare_rate(spec, settings: CaptionSettings, n: int, device: str = "cpu", cpu: bool = False):
    """captions/s of the loop a user writes with transformers: decode the JPEGs (PIL), the
    checkpoint's processor on the batch (chat-templated prompt, left padding), `model.generate`
    (its own global-RNG sampling; k captions per image as num_return_sequences), the new tokens
    decoded to text."""
    import torch
    import transformers
    from PIL import Image

    from curate.models.clip import autocast_dtype
    from curate.models.vlm import VlmInputs

    dtype = autocast_dtype(device, settings.inference.precision) or torch.float32
    processor = transformers.AutoProcessor.from_pretrained(spec.name)
    processor.tokenizer.padding_side = "left"
    model = transformers.AutoModelForImageTextToText.from_pretrained(spec.name, torch_dtype=dtype).to(device).eval()
    text = VlmInputs(spec, {"model_type": model.config.model_type}, settings.prompt).text
    kwargs = {**settings.params.transformers_kwargs(), "num_return_sequences": settings.captions_per_image}
    items, size, k = samples(n), settings.inference.batch_size, settings.captions_per_image

    def generate(chunk):
        images = [Image.open(io.BytesIO(s.image)).convert("RGB") for s in chunk]
        x = processor(images=images, text=None if text is None else [text] * len(images), padding=True,
                      return_tensors="pt").to(device=device, dtype=dtype)
        with torch.inference_mode():
            out = model.generate(**x, **kwargs)
        start = x["input_ids"].shape[1] if "input_ids" in x and not model.config.model_type == "blip" else 0
        return processor.batch_decode(out[:, start:], skip_special_tokens=True)

    generate(items[:min(size, 4)])  # warm-up
    return timed(generate, items, size, n * k, device, cpu)
