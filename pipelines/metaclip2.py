"""MetaCLIP 2 (Chuang et al., 2025): worldwide curation, per-language metadata and thresholds.

The metaclip recipe with `--metaclip_version 2`: language ID per caption (lid.176), matching
against that language's list (no space padding next to CJK/Thai-like characters), counts per
language, t_en for English and t_lang = p_to_t(counts_lang, t_to_p(counts_en, t_en)) for the
rest. Defaults: the shipped lists in metadata/languages/ and the bundled multilingual sample.
"""
from __future__ import annotations

from curate.inputs import bundled_worldwide_sample
from pipelines import metaclip

NAME = "metaclip2"
SUMMARY = "MetaCLIP 2: language ID, per-language metadata and t, balance, write shards"
STAGES = metaclip.STAGES
DEFAULTS: dict = {"metaclip_version": 2, "metadata": "default", "input": bundled_worldwide_sample()}
