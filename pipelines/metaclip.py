"""MetaCLIP (Xu et al., 2023): curate captions against metadata first, then fetch only what is kept.

read -> match entries -> global entry counts -> balance to t -> [download] -> image facts ->
[score] -> [keep: --keep's SQL test] -> dedup (URL, sha256 and pHash near duplicates, as MetaCLIP
deduplicated images) ->
[semantic balance] -> [synthetic captions] -> shards. On a URL list with --download=false the
same stages run column-wise (curate/metaclip/text_only.py) and write a curated URL list.
"""
from __future__ import annotations

from curate.convert.stage import ConvertImages
from curate.download.stage import Download
from curate.filters.image_facts import ImageFacts
from curate.keep.stage import Keep
from curate.metaclip.stages import MetaclipCuration
from curate.score.stages import Score
from pipelines.common import BALANCE, CAPTION, DEDUP

NAME = "metaclip"
SUMMARY = "MetaCLIP: substring-match captions to metadata, balance entries to t, write shards"
STAGES = [MetaclipCuration, Download, ImageFacts, Score, Keep, DEDUP, BALANCE, CAPTION, ConvertImages]
DEFAULTS: dict = {}
