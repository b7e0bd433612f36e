"""LAION-5B's English subset rule (Schuhmann et al., 2022): English captions with a CLIP
ViT-B/32 (OpenAI) score of at least 0.28.

read -> English (fastText lid; LAION used CLD3) -> [download] -> image facts -> clip_score
>= --clip_min -> dedup -> shards.
"""
from __future__ import annotations

from curate.balance.stage import apply_balance, balance_from_options
from curate.filters.basic import english_filter
from curate.score import recipe

NAME = "laion"
SUMMARY = "LAION: English captions, CLIP ViT-B/32 score >= 0.28"
DEFAULTS: dict = {"clip_model": "ViT-B-32-quickgelu", "clip_pretrained": "openai", "clip_min": 0.28}


def prepare(options, source) -> None:
    recipe.prepare(options)
    balance_from_options(options)


def build(flow):
    return apply_balance(flow, recipe.build(flow, "English", english_filter()))
