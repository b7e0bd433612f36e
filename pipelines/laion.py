"""LAION-5B's English subset rule (Schuhmann et al., 2022): English captions with a CLIP
ViT-B/32 (OpenAI) score of at least 0.28.

read -> English (fastText lid; LAION used CLD3) -> [download] -> image facts -> clip_score
>= --clip_min -> [--keep] -> dedup -> shards.
"""
from __future__ import annotations

from curate.balance.stage import SemanticBalance
from curate.convert.stage import ConvertImages
from curate.dedup.stage import Dedup
from curate.download.stage import Download
from curate.filters.basic import EnglishFilter
from curate.filters.image_facts import ImageFacts
from curate.keep.stage import Keep
from curate.safety.block_stage import BlockLists
from curate.safety.face_stage import BlurFaces
from curate.score.stage import Score
from curate.signals.stage import Signals

NAME = "laion"
SUMMARY = "LAION: English captions, CLIP ViT-B/32 score >= 0.28"
STAGES = [BlockLists, EnglishFilter, Download, ImageFacts, Score.using(required=True), Signals, Keep, Dedup,
          SemanticBalance, BlurFaces, ConvertImages]
DEFAULTS: dict = {"clip_model": "ViT-B-32-quickgelu", "clip_pretrained": "openai", "clip_min": 0.28}
