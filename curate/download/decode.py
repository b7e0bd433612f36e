"""From downloaded bytes to a verified image: sniff, guard, decode, optionally resize.

The type comes from the bytes, never from Content-Type. Decoding is guarded against
decompression bombs (a pixel limit read from the header, before pixels are decoded) and
truncated files. Resizing, when asked, is img2dataset's Resizer with its own modes, so images
come out as they would from img2dataset; `--resize_mode no` keeps the original bytes.
"""
from __future__ import annotations

import hashlib
import io
import threading
from typing import NamedTuple

from curate.download.failures import Refused
from curate.download.options import DownloadSettings
from curate.filters.image_facts import image_facts

SNIFF_BYTES = 12
_MAGIC = (
    (b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
    (b"BM", "bmp"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"),
)
_ISO_BRANDS = {b"avif": "avif", b"avis": "avif", b"heic": "heic", b"heix": "heic", b"mif1": "heic"}


def sniff(head: bytes) -> str | None:
    """The image format its first bytes announce, or None when they are not an image's."""
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        return _ISO_BRANDS.get(head[8:12])
    return None


class Decoded(NamedTuple):
    image: bytes
    width: int
    height: int
    image_format: str
    sha256: str
    original_width: int
    original_height: int


_RESIZERS: dict = {}
# The Resizer swaps the process's stdout/stderr file descriptors while it runs: one at a time.
_RESIZE_LOCK = threading.Lock()


def _resizer(cfg: DownloadSettings):
    """img2dataset's Resizer, built once per worker process (its import costs seconds)."""
    key = (cfg.resize_mode, cfg.image_size, cfg.resize_only_if_bigger, cfg.encode_format,
           cfg.encode_quality)
    if key not in _RESIZERS:
        try:
            from img2dataset.resizer import Resizer
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError("--resize_mode needs img2dataset: pip install 'curate[download]'") from e
        _RESIZERS[key] = Resizer(image_size=cfg.image_size, resize_mode=cfg.resize_mode,
                                 resize_only_if_bigger=cfg.resize_only_if_bigger,
                                 encode_format=cfg.encode_format, encode_quality=cfg.encode_quality)
    return _RESIZERS[key]


def decode(body: bytes, cfg: DownloadSettings) -> Decoded:
    """The image to keep; Refused(not_image | decode_error | too_many_pixels | too_small | resize_error)."""
    if sniff(body[:SNIFF_BYTES]) is None:
        raise Refused("not_image", f"starts with {body[:SNIFF_BYTES]!r}")
    try:
        width, height, fmt = image_facts(body, cfg.max_image_pixels)
    except ValueError as e:
        raise Refused(str(e)) from None
    if min(width, height) < cfg.min_image_size:
        raise Refused("too_small", f"{width}x{height} < {cfg.min_image_size}")
    original = (width, height)
    if cfg.resizes:
        resizer = _resizer(cfg)
        with _RESIZE_LOCK:
            image, width, height, _, _, error = resizer(io.BytesIO(body))
        if error is not None:
            raise Refused("resize_error", error)
        body, fmt = image, cfg.encode_format
    return Decoded(body, width, height, fmt, hashlib.sha256(body).hexdigest(), *original)


def prepare_worker(cfg: DownloadSettings) -> None:
    """Import what decoding needs before the first batch, not inside a request's deadline."""
    if cfg.resizes:
        _resizer(cfg)
