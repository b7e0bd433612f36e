"""Transformed copies of an image, as web corpora hold them: the near-duplicate test bench.

Used by the precision/recall benchmark and the tests (the same transformations, so the radius
the benchmark chose is the radius the tests exercise).
"""
from __future__ import annotations

import io
from typing import Callable

from PIL import Image, ImageEnhance, ImageOps


def encode(im: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, quality=quality) if fmt == "JPEG" else im.save(out, fmt)
    return out.getvalue()


def _crop(im: Image.Image, fraction: float) -> Image.Image:
    dx, dy = int(im.width * fraction), int(im.height * fraction)
    return im.crop((dx, dy, im.width - dx, im.height - dy))


def _resize(im: Image.Image, scale: float) -> Image.Image:
    return im.resize((max(1, int(im.width * scale)), max(1, int(im.height * scale))), Image.Resampling.BICUBIC)


TRANSFORMS: dict[str, Callable[[Image.Image], bytes]] = {
    "jpeg_q90": lambda im: encode(im, quality=90),
    "jpeg_q50": lambda im: encode(im, quality=50),
    "jpeg_q20": lambda im: encode(im, quality=20),
    "png": lambda im: encode(im, "PNG"),
    "resize_50": lambda im: encode(_resize(im, 0.5)),
    "resize_25": lambda im: encode(_resize(im, 0.25)),
    "upscale_150": lambda im: encode(_resize(im, 1.5)),
    "crop_1": lambda im: encode(_crop(im, 0.01)),
    "crop_2": lambda im: encode(_crop(im, 0.02)),
    "crop_5": lambda im: encode(_crop(im, 0.05)),
    "crop_10": lambda im: encode(_crop(im, 0.10)),
    "grayscale": lambda im: encode(ImageOps.grayscale(im).convert("RGB")),
    "brightness_120": lambda im: encode(ImageEnhance.Brightness(im).enhance(1.2)),
    "contrast_80": lambda im: encode(ImageEnhance.Contrast(im).enhance(0.8)),
    "saturation_150": lambda im: encode(ImageEnhance.Color(im).enhance(1.5)),
    "mirror": lambda im: encode(ImageOps.mirror(im)),
}


def variants(data: bytes, names=None) -> dict[str, bytes]:
    """name -> bytes of each transformed copy of an encoded image."""
    with Image.open(io.BytesIO(data)) as im:
        rgb = im.convert("RGB")
    return {name: TRANSFORMS[name](rgb) for name in (names or TRANSFORMS)}
