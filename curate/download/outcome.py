"""What became of one URL: the image, or the reason it has none, and how the fetch went.

An Outcome is what the fetch produces, what the per-batch cache stores and what a sample
receives: its image facts, its ledger values and its reason.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from curate.blocklist.names import BLOCK_DISTANCE, BLOCK_LIST, PDQ, PDQ_QUALITY, REASON as BLOCKED
from curate.sample import Sample

STAGE = "download"
# ledger columns the download stage adds
FIELDS: dict[str, pa.DataType] = {
    "http_status": pa.int32(),
    "download_bytes": pa.int64(),  # body bytes received in the last attempt
    "download_attempts": pa.int32(),  # requests made for this URL, over every run into this output
    "download_elapsed_s": pa.float64(),  # from the first attempt to the outcome, waits included
    "download_final_url": pa.string(),  # where redirects ended, when they did
    "download_error": pa.string(),  # a short cause of the failure
    "download_from_cache": pa.bool_(),  # taken from an earlier run into the same output
    "original_width": pa.int32(),  # before --resize_mode (img2dataset's columns)
    "original_height": pa.int32(),
    "tdm_policy": pa.string(),  # the TDMRep policy URL of a reserved work, when the site gives one
}


@dataclass(slots=True)
class Outcome:
    uid: str
    detail: str | None = None  # None: success; else the reason after `download:`
    transient: bool = False  # a rerun tries again
    http_status: int | None = None
    download_bytes: int = 0
    attempts: int = 0
    elapsed_s: float = 0.0
    final_url: str | None = None
    error: str | None = None
    image: bytes | None = None
    width: int | None = None
    height: int | None = None
    image_format: str | None = None
    sha256: str | None = None
    original_width: int | None = None
    original_height: int | None = None
    block_list: str | None = None  # the block list the URL or image is on (its image is dropped)
    block_distance: int | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    tdm_policy: str | None = None
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return self.detail is None

    def apply(self, sample: Sample) -> str | None:
        """Give the sample its image (or not) and ledger values; returns its reason or None."""
        sample.values.update({
            "http_status": self.http_status,
            "download_bytes": self.download_bytes,
            "download_attempts": self.attempts,
            "download_elapsed_s": round(self.elapsed_s, 4),
            "download_final_url": self.final_url,
            "download_error": self.error,
            "download_from_cache": self.from_cache,
            "original_width": self.original_width,
            "original_height": self.original_height,
            "tdm_policy": self.tdm_policy,
        })
        if self.pdq is not None:
            sample.values[PDQ], sample.values[PDQ_QUALITY] = self.pdq, self.pdq_quality
        if self.block_list is not None:
            sample.values[BLOCK_LIST], sample.values[BLOCK_DISTANCE] = self.block_list, self.block_distance
            return BLOCKED
        if not self.ok:
            return f"{STAGE}:{self.detail}"
        sample.image = self.image
        sample.width, sample.height = self.width, self.height
        sample.image_format, sample.sha256 = self.image_format, self.sha256
        return None
