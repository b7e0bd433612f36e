"""DataComp's basic filter (Gadre et al., 2023) as filter rules, in the order they are cheap.

Keeps a sample when its caption has more than 2 words and more than 5 characters, is English
(fastText lid), and its image's shorter side is at least 200 px with an aspect ratio of at
most 3. Image rules read width/height that ImageFacts set from the bytes (DataComp used the
original size too); a sample without an image yet (text-only curation) passes them.
"""
from __future__ import annotations

from curate.filters.filter_stage import FilterStage
from curate.filters.language import FIELDS as LANGUAGE_FIELDS, LanguageRule
from curate.sample import Sample

NAME = "filter"
MIN_WORDS = 3  # "more than 2 words"
MIN_CHARS = 6  # "more than 5 characters"
MIN_SIDE = 200
MAX_ASPECT_RATIO = 3.0


def caption_words(sample: Sample) -> str | None:
    if not sample.caption:
        return "no_caption"
    return None if len(sample.caption.split()) >= MIN_WORDS else "caption_words"


def caption_chars(sample: Sample) -> str | None:
    return None if len(sample.caption) >= MIN_CHARS else "caption_chars"


def min_side(sample: Sample) -> str | None:
    if sample.width is None or sample.height is None:
        return None
    return None if min(sample.width, sample.height) >= MIN_SIDE else "min_side"


def aspect_ratio(sample: Sample) -> str | None:
    if not sample.width or not sample.height:
        return None
    ratio = max(sample.width / sample.height, sample.height / sample.width)
    return None if ratio <= MAX_ASPECT_RATIO else "aspect_ratio"


CAPTION_RULES = (caption_words, caption_chars)
IMAGE_RULES = (min_side, aspect_ratio)
ENGLISH = LanguageRule(("en",))


class BasicCaptionFilter(FilterStage):
    """The basic filter's text rules: they run before any image is downloaded."""

    step = "BasicFilter"
    rules = (*CAPTION_RULES, ENGLISH)
    fields = dict(LANGUAGE_FIELDS)


class BasicImageFilter(FilterStage):
    """The basic filter's image rules, on the width and height ImageFacts read."""

    step = "ImageSizeFilter"
    rules = IMAGE_RULES


class EnglishFilter(FilterStage):
    """English captions only (LAION's language step, with fastText instead of CLD3)."""

    step = "English"
    rules = (ENGLISH,)
    fields = dict(LANGUAGE_FIELDS)


def basic_filter() -> FilterStage:
    """The whole DataComp basic filter as one stage (reasons `filter:<rule>`)."""
    return FilterStage(NAME, [*CAPTION_RULES, ENGLISH, *IMAGE_RULES], fields=dict(LANGUAGE_FIELDS))
