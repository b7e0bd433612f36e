"""BlockLists: the first stage of every recipe that reads images or URLs.

It drops, as `safety:blocked`, a sample whose URL is on a `url`/`url_md5` list or whose image
(from shards or an image folder) is on a hash list, before any later stage can park, write or
score it: it runs fused with the read, so a blocked image's bytes reach no file of the run.
Images that arrive later, by download, are checked inside the download stage before its cache
write (curate/download/fetch.py), with the same `curate.blocklist.check`.
"""
from __future__ import annotations

from curate.blocklist.build import build_indexes, manifest_path
from curate.blocklist.check import open_check
from curate.blocklist.names import BLOCK_DISTANCE, BLOCK_LIST, FIELDS, PDQ, PDQ_QUALITY, REASON
from curate.blocklist.options import BlockListOptions, BlockSettings, block_settings
from curate.sample import Sample
from curate.stage import SampleStage

BLOCKED = REASON.split(":", 1)[1]


def record_block(sample: Sample, list_name: str, distance: int) -> str:
    """The ledger values of a blocked sample; its image is let go at once."""
    sample.values[BLOCK_LIST] = list_name
    sample.values[BLOCK_DISTANCE] = distance
    sample.image = None
    return BLOCKED


class BlockLists(SampleStage):
    """Drop samples whose URL or image is on a block list (--block_list), before anything keeps them."""

    step = "BlockLists"
    name = REASON.split(":", 1)[0]
    options = (BlockListOptions,)
    fields = FIELDS

    def __init__(self, settings: BlockSettings, output: str):
        super().__init__()
        self.settings = settings
        self.output = output

    @classmethod
    def from_run(cls, run) -> "BlockLists | None":
        settings = run.derive(block_settings)
        return cls(settings, run.output) if settings.lists else None

    def prepare(self) -> None:
        build_indexes(self.settings, self.output)

    def setup(self) -> None:
        self.check = open_check(manifest_path(self.output))

    def judge(self, sample: Sample) -> str | None:
        match = self.check.match_url(sample.url)
        if match is None and sample.image is not None:
            verdict = self.check.match_image(sample.image)
            if verdict.pdq is not None:
                sample.values[PDQ], sample.values[PDQ_QUALITY] = verdict.pdq, verdict.pdq_quality
            match = verdict.match
        return None if match is None else record_block(sample, *match)
