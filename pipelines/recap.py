"""Recaption: synthetic captions for existing shards (ours, img2dataset's, any WebDataset), an image
folder, or a URL list, in the same graph that reads and writes them.

read -> [download] -> image facts -> caption (open_clip CoCa or a transformers VLM, --caption_*
flags) -> shards
Each shard keeps the alt-text in `<uid>.txt` (unless --caption_mix swaps it for that sample) and
adds `<uid>.syn.txt`; `<uid>.json`, the sidecar and the ledger carry syn_caption, syn_captions
and caption_model. The default model is open_clip's COCO-finetuned CoCa ViT-L/14 (needs network
once to fetch it); `--caption_model Qwen/Qwen2-VL-2B-Instruct` (any transformers captioner) swaps
it; offline, pass a local config .json and checkpoint, or a checkpoint folder (README: Synthetic
captions).
"""
from __future__ import annotations

from curate.caption.stage import Caption
from curate.convert.stage import ConvertImages
from curate.download.stage import Download
from curate.filters.image_facts import ImageFacts
from curate.keep.stage import Keep
from curate.safety.block_stage import BlockLists
from curate.safety.face_stage import BlurFaces
from curate.score.stage import Score
from curate.signals.stage import Signals

NAME = "recap"
SUMMARY = "recaption shards, images or URLs with a CoCa or a transformers VLM (syn_caption beside the alt-text)"
STAGES = [BlockLists, Download, ImageFacts, Signals, Keep, Caption.using(required=True), BlurFaces, ConvertImages]
PROVIDERS = [Score]  # --syn_clip_score scores the synthetic captions with --clip_model
# a CoCa named without --caption_pretrained gets its COCO-finetuned weights (caption/settings.py)
DEFAULTS: dict = {"caption_model": "coca_ViT-L-14"}
