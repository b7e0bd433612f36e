"""Reshard: apply a subset (a DataComp uid array) to existing shards, without re-downloading.

read shards -> keep the samples whose uid is in --subset (binary search, as DataComp's
resharder) -> [--keep] -> new contiguous shards + sidecars + sizes.json, and a ledger where every other
sample is `subset:not_in_subset`. Images and captions are copied byte for byte. A sample is
looked up by (and keeps) the uid in its json when it has one (our shards, DataComp's,
img2dataset's with a uid column), else by the uid curate derives. Any input works: on a URL
list or DataComp's metadata Parquet (a `uid` column) it writes the subset's rows as a curated
URL list. `--shard_size` is DataComp's name for --samples_per_shard. A uid listed k times in
the subset is kept once (DataComp's optional "repeat k times" is not implemented; the count of
repeated uids is in stats.json).
"""
from __future__ import annotations

from curate.keep.stage import Keep
from curate.safety.block_stage import BlockLists
from curate.safety.face_stage import BlurFaces
from curate.subset.stage import KeepSubset

NAME = "reshard"
SUMMARY = "keep the samples of a subset (DataComp uid .npy) from shards, write new shards"
STAGES = [BlockLists, KeepSubset, Keep, BlurFaces]
DEFAULTS: dict = {}
