"""Keep the samples whose uid is in a subset: the reshard recipe's one stage.

The subset is opened once per worker process in `setup` (memory-mapped: a worker's processes
share its pages) and searched with np.searchsorted, as DataComp's resharder does. A sample is
looked up by its original uid when its json carries one (`uid` of our own shards, of
DataComp's, of img2dataset's with a uid column), else by the uid curate derived for it; the
rest is dropped as `subset:not_in_subset`. That original uid becomes the sample's uid (a sample
keeps its uid across reshards), so the new shards, their ledger and an export of them name
samples as the subset does. Facts: the subset's size, its repeated uids and how many matched.
"""
from __future__ import annotations

import re
import threading

import apache_beam as beam

from curate.errors import UsageError
from curate.options import CurateOptions
from curate.stage import DROPPED, Judge, Stage, StageOutput, apply_judge
from curate.subset.format import SubsetLookup, hex_to_keys, open_subset
from curate.subset.options import SubsetOptions

NAME = "subset"
NOT_IN_SUBSET = "not_in_subset"
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_cache: dict[str, SubsetLookup] = {}
_lock = threading.Lock()


def subset_lookup(path: str) -> SubsetLookup:
    """The subset, opened once per process (every DoFn instance of a worker shares it)."""
    with _lock:
        if path not in _cache:
            _cache[path] = SubsetLookup(path)
        return _cache[path]


def lookup_uid(sample) -> str:
    original = sample.extras.get("uid")
    return original if isinstance(original, str) and _HEX32.fullmatch(original) else sample.uid


def subset_facts(path: str) -> dict:
    """The subset's size and how many of its uids repeat (kept once: DataComp's optional repeat
    is not implemented)."""
    pairs = open_subset(path)
    repeated = 0
    for start in range(0, len(pairs), 1 << 22):  # sorted: a repeat sits next to its twin
        chunk = pairs[max(0, start - 1):start + (1 << 22)]
        repeated += int((chunk[1:] == chunk[:-1]).sum())
    return {"subset": path, "subset_uids": len(pairs), "repeated_uids": repeated}


class InSubset(Judge):
    name = NAME

    def __init__(self, path: str):
        self.path = path

    def setup(self):
        super().setup()
        self.subset = subset_lookup(self.path)

    def judge_batch(self, samples):
        for sample in samples:  # a sample keeps its uid across reshards: the new shards speak the subset's uids
            sample.uid = lookup_uid(sample).lower()
        keys, _ = hex_to_keys([s.uid for s in samples])  # every one is 32 hex
        found = self.subset.contains(keys)
        return [None if f else NOT_IN_SUBSET for f in found]


class KeepSubset(Stage):
    """Keep the samples whose uid is in --subset (a sorted DataComp uid array)."""

    step = "Subset"
    name = NAME
    options = (SubsetOptions,)

    def __init__(self, path: str, subset_facts: dict):
        super().__init__()
        self.path = path
        self.subset_facts = dict(subset_facts)

    @classmethod
    def from_run(cls, run) -> "KeepSubset":
        o = run.view(SubsetOptions)
        if not o.subset:
            raise UsageError("--subset: the reshard recipe needs a subset .npy (python -m curate.subset export|cut)")
        facts = subset_facts(o.subset)
        if not facts["subset_uids"]:
            raise UsageError(f"--subset: {o.subset} holds no uids: every sample would be dropped")
        if o.shard_size is not None:
            if o.shard_size < 1:
                raise UsageError("--shard_size: must be >= 1")
            run.view(CurateOptions).samples_per_shard = o.shard_size  # DataComp's name for it
        return cls(o.subset, facts)

    def local_files(self) -> dict[str, str]:
        return {"--subset": self.path}

    def expand(self, batches):
        out = apply_judge(batches, InSubset(self.path), label="Lookup")
        facts = (out.kept | "CountMatched" >> beam.Map(len) | "SumMatched" >> beam.CombineGlobally(sum)
                 | "Facts" >> beam.Map(lambda n, static: {**static, "matched_samples": n}, self.subset_facts))
        return StageOutput(out.kept, [out[DROPPED]], facts)


