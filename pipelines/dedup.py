"""Deduplicate existing shards: ours, img2dataset's, or any WebDataset (or a folder, a URL list).

read -> image facts -> [score: image embeddings for SemDeDup, with --clip_model/--dfn_model]
-> [--keep] -> dedup (eval decontamination, exact URL/sha256, pHash near duplicates, SemDeDup) -> shards.
Every dropped sample's ledger row names its keeper (or eval item) and the distance.
"""
from __future__ import annotations

from curate.convert.stage import ConvertImages
from curate.filters.image_facts import ImageFacts
from curate.keep.stage import Keep
from curate.score.stages import Score
from pipelines.common import DEDUP

NAME = "dedup"
SUMMARY = "deduplicate shards or images: exact URL/sha256, pHash near-dups, SemDeDup, eval decontamination"
STAGES = [ImageFacts, Score, Keep, DEDUP, ConvertImages]
DEFAULTS: dict = {}
