"""DFN (Fang et al., 2023): keep the pool's top fraction by a data-filtering network's score.

read -> basic filter's caption rules -> [download] -> image facts -> its image rules -> dfn_score
-> keep the top --dfn_keep_fraction (default 15 %, as DFN-2B kept of its pool) -> dedup -> shards. The default scorer is Apple's released
DFN CLIP (ViT-L-14-quickgelu + dfn2b); a user's own filtering network plugs in with
--dfn_model/--dfn_pretrained (a config .json + checkpoint file, or hf-hub:org/repo).
The fraction is of the samples that reach the cut (after the basic filter).
"""
from __future__ import annotations

from curate.balance.stage import apply_balance, balance_from_options
from curate.caption.settings import apply_captions, prepare_captions
from curate.filters.basic import caption_filter, image_size_filter
from curate.score import recipe

NAME = "dfn"
SUMMARY = "DFN: basic filter, data-filtering-network score, keep the pool's top 15 %"
DEFAULTS: dict = {"dfn_model": "ViT-L-14-quickgelu", "dfn_pretrained": "dfn2b", "dfn_keep_fraction": 0.15}


def prepare(options, source) -> None:
    recipe.prepare(options)
    balance_from_options(options)
    prepare_captions(options)  # optional: on with --caption_model


def build(flow):
    batches = apply_balance(flow, recipe.build(flow, "BasicFilter", caption_filter(), image_size_filter()))
    return apply_captions(flow, batches)
