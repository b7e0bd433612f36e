"""What a worker asks of the block lists: is this URL, or this image, on one of them?

`open_check(manifest)` opens a run's lists once per worker process (memory-mapped, shared by
its threads). An image is hashed only the ways its lists need: MD5 / SHA-1 / SHA-256 of its
bytes as fetched or read, pHash, and PDQ (whose hash, with its quality, is reported for the
ledger; a PDQ of quality below 50 matches nothing, as Meta advises). The first list, in flag
order, that holds the URL or image decides; its name and the distance go to the ledger.
"""
from __future__ import annotations

import hashlib
import json
import threading
from typing import NamedTuple

import numpy as np

from curate.blocklist.index import ListIndex
from curate.blocklist.names import IMAGE_KINDS, URL_KINDS
from curate.hashes import pdq as pdq_hash
from curate.hashes.phash import phash
from curate.io import files as fs

_CHECKS: dict[str, "BlockCheck"] = {}
_CHECKS_LOCK = threading.Lock()


class Match(NamedTuple):
    list: str  # the list's name
    distance: int  # Hamming bits (pdq, phash), else 0


class ImageVerdict(NamedTuple):
    match: Match | None
    pdq: str | None = None  # hex, when a pdq list is checked and the image decodes
    pdq_quality: int | None = None


def url_key(url: str) -> bytes:
    """What `url` and `url_md5` lists hold: the MD5 of the URL's UTF-8 bytes, as written."""
    return hashlib.md5(url.encode("utf-8", "surrogatepass")).digest()


class BlockCheck:
    def __init__(self, raw: bytes):
        self.fingerprint = hashlib.sha256(raw).hexdigest()[:16]
        self.lists = [(entry, ListIndex(entry["folder"])) for entry in json.loads(raw)["lists"]]
        self.kinds = {entry["kind"] for entry, _ in self.lists}
        self.checks_images = bool(self.kinds & set(IMAGE_KINDS))
        self.checks_pdq = "pdq" in self.kinds

    def match_url(self, url: str | None) -> Match | None:
        if not url or not self.kinds & set(URL_KINDS):
            return None
        key = np.frombuffer(url_key(url), np.uint8).reshape(1, -1)
        for entry, index in self.lists:
            if entry["kind"] in URL_KINDS and index.contains(key)[0]:
                return Match(entry["name"], 0)
        return None

    def _hashes(self, data: bytes) -> tuple[dict[str, bytes], int | None]:
        hashes: dict[str, bytes] = {}
        quality = None
        for kind in self.kinds & {"md5", "sha1", "sha256"}:
            hashes[kind] = hashlib.new(kind, data).digest()
        try:
            if "phash" in self.kinds:
                hashes["phash"] = phash(data).to_bytes(8, "big")
            if self.checks_pdq:
                hashes["pdq"], quality = pdq_hash.pdq(data)
        except ValueError:
            pass  # undecodable: only the byte hashes can match (the image stages drop it later)
        return hashes, quality

    def match_image(self, data: bytes | None) -> ImageVerdict:
        if data is None or not self.checks_images:
            return ImageVerdict(None)
        hashes, quality = self._hashes(data)
        match = None
        for entry, index in self.lists:
            kind = entry["kind"]
            if kind not in hashes or (kind == "pdq" and quality < pdq_hash.MIN_QUALITY):
                continue
            distance = index.nearest(np.frombuffer(hashes[kind], np.uint8), entry["radius"])
            if distance is not None:
                match = Match(entry["name"], distance)
                break
        pdq_hex = pdq_hash.to_hex(hashes["pdq"]) if "pdq" in hashes else None
        return ImageVerdict(match, pdq_hex, quality)


def open_check(manifest_path: str) -> BlockCheck:
    """The process's check for this manifest (lists opened on first use, again if it changed)."""
    raw = fs.read_bytes(manifest_path)
    key = f"{manifest_path}\x00{hashlib.sha256(raw).hexdigest()}"
    with _CHECKS_LOCK:
        if key not in _CHECKS:
            _CHECKS[key] = BlockCheck(raw)
        return _CHECKS[key]
