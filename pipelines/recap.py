"""Recaption: synthetic CoCa captions for existing shards (ours, img2dataset's, any WebDataset),
an image folder, or a URL list, in the same graph that reads and writes them.

read -> [download] -> image facts -> [--keep] -> caption (open_clip CoCa, --caption_* flags) -> shards
Each shard keeps the alt-text in `<uid>.txt` (unless --caption_mix swaps it for that sample) and
adds `<uid>.syn.txt`; `<uid>.json`, the sidecar and the ledger carry syn_caption, syn_captions
and caption_model. The default model is open_clip's COCO-finetuned CoCa ViT-L/14 (needs network
once to fetch it); offline, pass a local config .json and checkpoint (README: Synthetic captions).
"""
from __future__ import annotations

from curate.caption.stage import Caption
from curate.convert.stage import ConvertImages
from curate.download.stage import Download
from curate.filters.image_facts import ImageFacts
from curate.keep.stage import Keep
from curate.score.stages import Score

NAME = "recap"
SUMMARY = "recaption shards, images or URLs with an open_clip CoCa (syn_caption beside the alt-text)"
STAGES = [Download, ImageFacts, Keep, Caption.using(score=Score, required=True), ConvertImages]
DEFAULTS: dict = {"caption_model": "coca_ViT-L-14", "caption_pretrained": "mscoco_finetuned_laion2B-s13B-b90k"}
