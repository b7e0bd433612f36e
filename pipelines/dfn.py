"""DFN (Fang et al., 2023): keep the pool's top fraction by a data-filtering network's score.

read -> basic filter's caption rules -> [download] -> image facts -> its image rules -> dfn_score
-> keep the top --dfn_keep_fraction (default 15 %, as DFN-2B kept of its pool) -> [--keep] -> dedup -> shards.
The default scorer is Apple's released DFN CLIP (ViT-L-14-quickgelu + dfn2b); a user's own
filtering network plugs in with --dfn_model/--dfn_pretrained (a config .json + checkpoint file,
or hf-hub:org/repo). The fraction is of the samples that reach the cut (after the basic filter).
"""
from __future__ import annotations

from curate.balance.stage import SemanticBalance
from curate.caption.stage import Caption
from curate.convert.stage import ConvertImages
from curate.dedup.stage import Dedup
from curate.download.stage import Download
from curate.filters.basic import BasicCaptionFilter, BasicImageFilter
from curate.filters.image_facts import ImageFacts
from curate.keep.stage import Keep
from curate.safety.block_stage import BlockLists
from curate.safety.face_stage import BlurFaces
from curate.score.stage import Score
from curate.signals.stage import Signals

NAME = "dfn"
SUMMARY = "DFN: basic filter, data-filtering-network score, keep the pool's top 15 %"
STAGES = [BlockLists, BasicCaptionFilter, Download, ImageFacts, BasicImageFilter, Score.using(required=True), Signals,
          Keep, Dedup, SemanticBalance, Caption, BlurFaces, ConvertImages]
DEFAULTS: dict = {"dfn_model": "ViT-L-14-quickgelu", "dfn_pretrained": "dfn2b", "dfn_keep_fraction": 0.15}
