"""Download only (img2dataset's job): every URL of a list fetched into shards, nothing curated.

read -> download (limits, retries, opt-outs, optional resize) -> [--keep] -> [convert images] -> shards + ledger

For users who curate later: the shards read back as input of any other recipe, and the ledger
has one row per URL with its outcome, so a rerun into the same output retries only what failed
for a transient reason.
"""
from __future__ import annotations

from curate.convert.stage import ConvertImages
from curate.download.stage import Download
from curate.errors import UsageError
from curate.keep.stage import Keep
from curate.safety.block_stage import BlockLists
from curate.safety.face_stage import BlurFaces
from curate.signals.stage import Signals

NAME = "download"
SUMMARY = "download a URL list into shards (img2dataset's job, with retries, opt-outs and resume)"
STAGES = [BlockLists, Download, Signals, Keep, BlurFaces, ConvertImages]
DEFAULTS: dict = {"batch_size": 256}  # smaller batches: each one waits for its slowest URL


def check(run, stages) -> None:
    if not run.source.needs_download:
        raise UsageError(f"--input: the download recipe needs a URL list, got {run.source.describe()}")
    if not any(isinstance(s, Download) for s in stages):  # the offline bundled sample, or --download=false
        raise UsageError("--input: the download recipe needs a URL list to fetch (and --download not false)")
