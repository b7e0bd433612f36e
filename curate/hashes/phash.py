"""A 64-bit perceptual hash (pHash) of an image's bytes.

Why pHash and not MetaCLIP's PCA hash: pHash is a fixed transform of the pixels (DCT of a
32x32 grey thumbnail, the 8x8 lowest frequencies thresholded at their median), so it needs no
model, no embeddings and no fitted projection, is the same on every worker and every run, and
is computed from the bytes alone during the pass that already holds them. A PCA hash needs an
embedding per image and a global PCA fit first. pHash survives re-encoding, resizing and
recolouring (benchmarks/README.md has the measured distances); what it misses (crops, edits)
is what SemDeDup is for.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from curate.filters.image_facts import MAX_PIXELS, open_image

THUMB = 32  # side of the grey thumbnail the DCT runs on
LOW = 8  # LOW x LOW lowest frequencies -> 64 bits
_DCT: np.ndarray | None = None


def _dct_matrix(n: int) -> np.ndarray:
    """DCT-II matrix, unnormalized as scipy.fftpack.dct's default (what imagehash.phash uses):
    the same scaling gives the same median, so the same bits as the reference pHash."""
    k = np.arange(n)[:, None]
    return 2.0 * np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n))


def phash_pixels(grey: np.ndarray) -> int:
    """pHash of a THUMB x THUMB grey image (float array)."""
    global _DCT
    if _DCT is None:
        _DCT = _dct_matrix(THUMB)[:LOW]
    low = _DCT @ grey @ _DCT.T  # only the LOW x LOW corner of the 2-D DCT
    bits = (low > np.median(low)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def phash(data: bytes, max_pixels: int = MAX_PIXELS) -> int:
    """64-bit pHash of encoded image bytes; ValueError when they do not decode."""
    with open_image(data, max_pixels) as im:
        im.draft("L", (THUMB * 2, THUMB * 2))  # JPEG: decode at a reduced scale
        thumb = im.convert("L").resize((THUMB, THUMB), Image.Resampling.LANCZOS)
    return phash_pixels(np.asarray(thumb, dtype=np.float64))


def to_hex(value: int) -> str:
    return f"{value:016x}"


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
