"""Deduplicate existing shards: ours, img2dataset's, or any WebDataset (or a folder, a URL list).

read -> image facts -> [score: image embeddings for SemDeDup, with --clip_model/--dfn_model]
-> dedup (eval decontamination, exact URL/sha256, pHash near duplicates, SemDeDup) -> shards.
Every dropped sample's ledger row names its keeper (or eval item) and the distance.
"""
from __future__ import annotations

from curate.dedup.stage import apply_dedup, dedup_from_options
from curate.filters.image_facts import ImageFacts
from curate.stage import ApplyStage

NAME = "dedup"
SUMMARY = "deduplicate shards or images: exact URL/sha256, pHash near-dups, SemDeDup, eval decontamination"
DEFAULTS: dict = {}


def prepare(options, source) -> None:
    from curate.score.settings import prepare_scoring  # scoring: only for SemDeDup's embeddings

    prepare_scoring(options)  # optional: the embeddings SemDeDup needs
    dedup_from_options(options)  # bad flags and a missing eval set fail now, not on a worker


def build(flow):
    from curate.score.settings import score_settings  # scoring: only for SemDeDup's embeddings
    from curate.score.stages import Score

    batches = flow.read()
    batches = flow.apply("ImageFacts", ApplyStage(ImageFacts()), batches)
    scoring = score_settings(flow.options)
    if scoring is not None:
        batches = flow.apply("Score", Score(scoring, flow.output), batches)
    return apply_dedup(flow, batches)
