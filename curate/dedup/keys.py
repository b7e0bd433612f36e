"""The small per-sample values dedup's global steps work on, as one numpy record per row.

A batch's images never leave it: the signature pass turns each batch into a `keys` array
(about 100 bytes a row) and, for semantic dedup, an fp16 embedding matrix. Rows name their
sample by (batch id, position in the batch), which is how decisions find it again.
"""
from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

import numpy as np

KEY_DTYPE = np.dtype([
    ("batch", "S32"),  # the SampleBatch id
    ("pos", "<i4"),  # position in that batch
    ("uid", "S32"),
    ("score", "<f4"),  # the --dedup_score_field value, NaN when absent
    ("url", "S16"),  # digest of the normalized URL, empty when there is none
    ("sha", "S16"),  # first 16 bytes of the image's sha256, empty without an image
    ("phash", "<u8"),
    ("has_phash", "?"),
])


def empty_keys() -> np.ndarray:
    return np.zeros(0, dtype=KEY_DTYPE)


def concat(parts: list[np.ndarray]) -> np.ndarray:
    parts = [p for p in parts if len(p)]
    return np.concatenate(parts) if parts else empty_keys()


def canonical_order(keys: np.ndarray) -> np.ndarray:
    """Indices sorting rows by (uid, batch, pos): input order among equal uids, any bundle split."""
    return np.lexsort((keys["pos"], keys["batch"], keys["uid"]))


def normalize_url(url: str) -> str:
    """The URL as a duplicate key: scheme, 'www.', default port, fragment and case of host dropped.

    http/https and www/no-www variants of one address serve the same file; the path and query
    are kept as they are (they name the file, and case matters in them).
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    return f"{netloc}{parts.path or '/'}{'?' + parts.query if parts.query else ''}"


def url_digest(url: str | None) -> bytes:
    if not url:
        return b""
    try:
        normalized = normalize_url(url)
    except ValueError:  # an unparseable URL (bad port, brackets) is its own key
        normalized = url.strip()
    return hashlib.blake2b(normalized.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def sha_digest(sha256_hex: str | None) -> bytes:
    return bytes.fromhex(sha256_hex[:32]) if sha256_hex else b""


def batch_key(batch_id: str) -> bytes:
    raw = batch_id.encode()
    if len(raw) > KEY_DTYPE["batch"].itemsize:
        raise ValueError(f"batch id longer than {KEY_DTYPE['batch'].itemsize} bytes: {batch_id!r}")
    return raw
