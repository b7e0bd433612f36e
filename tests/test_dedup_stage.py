"""Dedup as one Stage: configured from the flags once, a failure on one sample is its drop, and
the keys a batch emits name its samples by their place in the kept batch."""
from __future__ import annotations

import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from curate.dedup.keys import sha_digest
from curate.dedup.options import DedupSettings
from curate.dedup.signatures import KEYS, Signatures
from curate.dedup.stage import Dedup
from curate.io.verdicts import DROPPED
from curate.run_context import RunContext
from curate.sample import Sample, SampleBatch
from tests.test_dedup_fixtures import PHOTOS


def _run(*flags) -> RunContext:
    return RunContext(PipelineOptions(list(flags)), source=None, output="/tmp/unused")


def test_from_run_is_none_without_dedup():
    assert Dedup.from_run(_run("--dedup", "none")) is None
    stage = Dedup.from_run(_run("--dedup", "url,sha256", "--semdedup_eps", "0.1"))
    assert stage.step == "Dedup" and stage.cfg.url and stage.cfg.sha and stage.cfg.semdedup_eps == 0.1
    assert DedupSettings() == Dedup.from_run(_run()).cfg  # the dataclass's defaults are the flags'


def test_a_sample_that_breaks_signing_is_dropped_alone_and_keys_index_the_kept_batch():
    photo = open(PHOTOS[0], "rb").read()
    samples = [Sample(uid=f"{i:032x}", url=f"http://x/{i}", image=photo) for i in range(3)]
    samples.insert(1, Sample(uid="f" * 32, url="http://x/bad", image="not bytes"))  # sha256 of a str raises
    samples.insert(2, Sample(uid="e" * 32, url="http://x/junk", image=b"not an image"))
    judge = Signatures(DedupSettings())
    judge.setup()
    out = list(judge.process(SampleBatch("00000-0000000000", samples)))
    dropped = [o.value[1] for o in out if getattr(o, "tag", None) == DROPPED]
    assert dropped[0].column("reason").to_pylist() == ["dedup:error_TypeError", "dedup:decode_error"]
    kept = next(o for o in out if isinstance(o, SampleBatch))
    keys = next(o.value for o in out if getattr(o, "tag", None) == KEYS)
    assert [s.uid for s in kept.samples] == [f"{i:032x}" for i in range(3)]
    assert keys["pos"].tolist() == [0, 1, 2] and keys["uid"].tolist() == [s.uid.encode() for s in kept.samples]
    assert keys["has_phash"].all() and len(np.unique(keys["phash"])) == 1
    assert keys["sha"].tolist() == [sha_digest(s.sha256) for s in kept.samples]
