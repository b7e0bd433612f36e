"""Reshard: apply a subset (a DataComp uid array) to existing shards, without re-downloading.

read shards -> keep the samples whose uid is in --subset (binary search, as DataComp's
resharder) -> new contiguous shards + sidecars + sizes.json, and a ledger where every other
sample is `subset:not_in_subset`. Images and captions are copied byte for byte. A sample is
looked up by (and keeps) the uid in its json when it has one (our shards, DataComp's,
img2dataset's with a uid column), else by the uid curate derives. Any input works: on a URL
list or DataComp's metadata Parquet (a `uid` column) it writes the subset's rows as a curated
URL list. `--shard_size` is DataComp's name for --samples_per_shard. A uid listed k times in
the subset is kept once (DataComp's optional "repeat k times" is not implemented; the count of
repeated uids is in stats.json).
"""
from __future__ import annotations

from curate.errors import UsageError
from curate.options import CurateOptions
from curate.subset.format import open_subset
from curate.subset.options import SubsetOptions
from curate.subset.stage import KeepSubset

NAME = "reshard"
SUMMARY = "keep the samples of a subset (DataComp uid .npy) from shards, write new shards"
DEFAULTS: dict = {}


def _subset_facts(path: str) -> dict:
    pairs = open_subset(path)
    repeated = 0
    for start in range(0, len(pairs), 1 << 22):  # sorted: a repeat sits next to its twin
        chunk = pairs[max(0, start - 1):start + (1 << 22)]
        repeated += int((chunk[1:] == chunk[:-1]).sum())
    return {"subset": path, "subset_uids": len(pairs), "repeated_uids": repeated}


def prepare(options, source) -> None:
    o = options.view_as(SubsetOptions)
    if not o.subset:
        raise UsageError("--subset: the reshard recipe needs a subset .npy (python -m curate.subset export|cut)")
    facts = _subset_facts(o.subset)
    if not facts["subset_uids"]:
        raise UsageError(f"--subset: {o.subset} holds no uids: every sample would be dropped")
    if o.shard_size is not None:
        if o.shard_size < 1:
            raise UsageError("--shard_size: must be >= 1")
        options.view_as(CurateOptions).samples_per_shard = o.shard_size


def build(flow):
    path = flow.options.view_as(SubsetOptions).subset
    return flow.apply("Subset", KeepSubset(path, _subset_facts(path)), flow.read())
