"""DataComp's best simple baselines (Gadre et al., 2023): basic filter, then CLIP score.

read -> basic filter's caption rules -> [download] -> image facts -> its image rules -> clip_score
(OpenAI ViT-L/14) -> keep the top 30 % (--clip_keep_fraction) [ ∩ image-based filter:
--image_filter_targets, e.g. ImageNet-train embeddings of the same model] -> [--keep] -> dedup -> shards.
DataComp took the 30 % over its whole pool; here the fraction is of the samples that pass the
basic filter and reach the cut.
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

NAME = "datacomp"
SUMMARY = "DataComp: basic filter, CLIP ViT-L/14 score top 30 % [∩ image-based k-means filter]"
STAGES = [BlockLists, BasicCaptionFilter, Download, ImageFacts, BasicImageFilter, Score.using(required=True), Signals,
          Keep, Dedup, SemanticBalance, Caption, BlurFaces, ConvertImages]
DEFAULTS: dict = {"clip_model": "ViT-L-14-quickgelu", "clip_pretrained": "openai", "clip_keep_fraction": 0.3}
