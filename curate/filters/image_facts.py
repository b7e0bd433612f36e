"""Decode every image once: width, height, true format (sniffed, not trusted from a name), sha256.

A corrupt or truncated image, or one past the pixel limit (a decompression bomb), becomes a
ledger row; the run goes on.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from contextlib import contextmanager
from typing import Iterator

from PIL import Image

from curate.sample import Sample
from curate.stage import SampleStage

MAX_PIXELS = 178_956_970  # Pillow's own bomb limit: ~179 MP
PIL_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp",
               "TIFF": "tiff", "MPO": "jpg"}


@contextmanager
def open_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Iterator[Image.Image]:
    """The PIL image of encoded bytes, guarded: ValueError("too_many_pixels") past the pixel
    limit (read from the header, before any pixel is decoded), ValueError("decode_error") when
    opening or decoding it inside the block fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > max_pixels:
                    raise ValueError("too_many_pixels")
                yield im
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError("too_many_pixels") from None
        except (OSError, SyntaxError, Image.UnidentifiedImageError, EOFError) as e:
            raise ValueError("decode_error") from e


def image_facts(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[int, int, str]:
    """(width, height, format) of a fully decodable image; raises ValueError otherwise."""
    with open_image(data, max_pixels) as im:
        width, height = im.size
        fmt = PIL_FORMATS.get(im.format or "", (im.format or "unknown").lower())
        im.draft("RGB", (max(1, width // 8), max(1, height // 8)))  # JPEG: decode at 1/8
        im.load()  # a truncated file fails here
    return width, height, fmt


class ImageFacts(SampleStage):
    """Sets width, height, image_format and sha256; samples without image bytes pass as they are
    (so the column-wise text graph, which has no images, covers it)."""

    step = "ImageFacts"
    name = "image"

    def __init__(self, max_pixels: int = MAX_PIXELS):
        super().__init__()
        self.max_pixels = max_pixels

    def judge(self, sample: Sample) -> str | None:
        if sample.image is None:
            return None
        try:
            sample.width, sample.height, sample.image_format = image_facts(sample.image, self.max_pixels)
        except ValueError as e:
            return str(e)
        sample.sha256 = hashlib.sha256(sample.image).hexdigest()
        return None
