"""Dedup's reasons and metrics: the one place their strings are written.

A drop's ledger reason is `dedup:<detail>`; drop records (decisions.py) carry only the detail.
"""
from __future__ import annotations

from curate.io import verdicts

NAME = "dedup"
URL, SHA256, PHASH, SEMANTIC = "url", "sha256", "phash", "semantic"  # a duplicate of a kept sample
EVAL_CONTAMINATION = "eval_contamination"  # near an evaluation image
WITHOUT_EMBEDDING = f"{NAME}_without_embedding"  # metric: rows SemDeDup could not place


def reason(detail: str) -> str:
    return verdicts.reason(NAME, detail)
