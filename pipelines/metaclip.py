"""MetaCLIP (Xu et al., 2023): curate captions against metadata first, then fetch only what is kept.

read -> match entries -> global entry counts -> balance to t -> [download] -> image facts ->
[score] -> [keep: --keep's SQL test] -> dedup (URL, sha256 and pHash near duplicates, as MetaCLIP
deduplicated images) ->
[semantic balance] -> [synthetic captions] -> shards. On a URL list with --download=false the
same graph writes a curated URL list instead of shards.
"""
from __future__ import annotations

from curate.balance.stage import SemanticBalance
from curate.caption.stage import Caption
from curate.convert.stage import ConvertImages
from curate.dedup.stage import Dedup
from curate.download.stage import Download
from curate.filters.image_facts import ImageFacts
from curate.keep.stage import Keep
from curate.metaclip.stage import MetaclipCuration
from curate.safety.block_stage import BlockLists
from curate.safety.face_stage import BlurFaces
from curate.score.stage import Score
from curate.signals.stage import Signals

NAME = "metaclip"
SUMMARY = "MetaCLIP: substring-match captions to metadata, balance entries to t, write shards"
STAGES = [BlockLists, MetaclipCuration, Download, ImageFacts, Score, Signals, Keep, Dedup, SemanticBalance, Caption,
          BlurFaces, ConvertImages]
DEFAULTS: dict = {}
