"""Deduplicate existing shards: ours, img2dataset's, or any WebDataset (or a folder, a URL list).

read -> image facts -> [score: image embeddings for SemDeDup, with --clip_model/--dfn_model]
-> [--keep] -> dedup (eval decontamination, exact URL/sha256, pHash near duplicates, SemDeDup) -> shards.
Every dropped sample's ledger row names its keeper (or eval item) and the distance.
"""
from __future__ import annotations

from curate.convert.stage import ConvertImages
from curate.dedup.stage import Dedup
from curate.download.stage import Download
from curate.filters.image_facts import ImageFacts
from curate.keep.stage import Keep
from curate.safety.block_stage import BlockLists
from curate.safety.face_stage import BlurFaces
from curate.score.stage import Score
from curate.signals.stage import Signals

NAME = "dedup"
SUMMARY = "deduplicate shards or images: exact URL/sha256, pHash near-dups, SemDeDup, eval decontamination"
STAGES = [BlockLists, ImageFacts, Score, Signals, Keep, Dedup, BlurFaces, ConvertImages]
PROVIDERS = [Download]  # fetches --eval_images given as a URL list
