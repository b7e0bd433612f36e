"""PDQ: Meta's 256-bit perceptual hash, computed by its reference C++ through `pdqhash`.

PDQ is what platforms share hashes of known abuse material in (ThreatExchange, NCMEC): a
match is a Hamming distance of at most 31 bits, and a hash whose quality (a gradient measure of
the 64x64 downsample, 0-100) is below 50 is not matched on. The hex form is ThreatExchange's:
64 lowercase hex characters, the first bit most significant.

Images larger than 512 px on a side are shrunk to fit 512 x 512 first, as Meta's own hashing
tools do (the C++ `pdqio` and the Python `pdq_hasher`); the hash is of the pixels as stored
(no EXIF rotation), like those tools.
"""
from __future__ import annotations

import numpy as np

from curate.filters.image_facts import MAX_PIXELS, open_image

BITS = 256
MIN_QUALITY = 50  # Meta: hashes of quality <= 49 are discarded
DOWNSAMPLE = 512


def _compute():
    try:
        import pdqhash
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("PDQ block lists need pdqhash: pip install 'curate[safety]'") from e
    return pdqhash.compute


def pdq_pixels(rgb: np.ndarray) -> tuple[bytes, int]:
    """(32-byte hash, quality) of an RGB uint8 array (height x width x 3)."""
    bits, quality = _compute()(np.ascontiguousarray(rgb, dtype=np.uint8))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), int(quality)


def pdq(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[bytes, int]:
    """(32-byte hash, quality) of encoded image bytes; ValueError when they do not decode."""
    with open_image(data, max_pixels) as im:
        im.draft("RGB", (DOWNSAMPLE, DOWNSAMPLE))  # JPEG: decode at a reduced scale
        rgb = im.convert("RGB")
        rgb.thumbnail((DOWNSAMPLE, DOWNSAMPLE))
    return pdq_pixels(np.asarray(rgb))


def to_hex(value: bytes) -> str:
    return value.hex()
