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

from curate.stage import ApplyStage, SampleStage, StageOutput
from curate.subset.format import SubsetLookup, hex_to_keys

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


class InSubset(SampleStage):
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


class KeepSubset(beam.PTransform):
    """InSubset as a stage whose facts count the matches. Returns a StageOutput."""

    def __init__(self, path: str, subset_facts: dict):
        super().__init__()
        self.path = path
        self.subset_facts = dict(subset_facts)
        self.fields = {}

    def expand(self, batches):
        out = batches | "Lookup" >> ApplyStage(InSubset(self.path))
        facts = (out.kept | "CountMatched" >> beam.Map(len) | "SumMatched" >> beam.CombineGlobally(sum)
                 | "Facts" >> beam.Map(lambda n, static: {**static, "matched_samples": n}, self.subset_facts))
        return StageOutput(out.kept, out.dropped, facts)


