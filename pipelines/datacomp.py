"""DataComp's best simple baselines (Gadre et al., 2023): basic filter, then CLIP score.

read -> basic filter's caption rules -> [download] -> image facts -> its image rules -> clip_score
(OpenAI ViT-L/14) -> keep the top 30 % (--clip_keep_fraction) [ ∩ image-based filter:
--image_filter_targets, e.g. ImageNet-train embeddings of the same model] -> dedup -> shards. DataComp took the 30 % over its whole pool; here the
fraction is of the samples that pass the basic filter and reach the cut.
"""
from __future__ import annotations

from curate.balance.stage import apply_balance, balance_from_options
from curate.caption.settings import apply_captions, prepare_captions
from curate.filters.basic import caption_filter, image_size_filter
from curate.score import recipe

NAME = "datacomp"
SUMMARY = "DataComp: basic filter, CLIP ViT-L/14 score top 30 % [∩ image-based k-means filter]"
DEFAULTS: dict = {"clip_model": "ViT-L-14-quickgelu", "clip_pretrained": "openai", "clip_keep_fraction": 0.3}


def prepare(options, source) -> None:
    recipe.prepare(options)
    balance_from_options(options)
    prepare_captions(options)  # optional: on with --caption_model


def build(flow):
    batches = apply_balance(flow, recipe.build(flow, "BasicFilter", caption_filter(), image_size_filter()))
    return apply_captions(flow, batches)
