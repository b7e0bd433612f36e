"""MetaCLIP 2's padding rule: which side of an entry needs a space for a whole-word match.

v1 matches `" " + e + " "`. MetaCLIP 2 (its `get_spaced_metadata`) pads a side only when the
entry's first / last character is not "CJK-or-similar": scripts written without spaces
between words, and punctuation, may touch the next character. The ranges below are the
reference's, exactly; it leaves out Hiragana/Katakana and Hangul, so a Japanese entry ending
in kana still needs a space after it. `CORRECTED` adds those blocks (flag --metaclip_cjk_ranges
corrected); the default reproduces the reference.
"""
from __future__ import annotations

import string
from functools import partial

# (first, last) code points, inclusive: CJK ideographs, extensions, compatibility, radicals,
# Kangxi, description characters; then Thai, Lao, Burmese, Khmer, Tibetan
REFERENCE_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF), (0x2CEB0, 0x2EBEF), (0xF900, 0xFAFF), (0x2E80, 0x2EFF), (0x2F00, 0x2FDF),
    (0x2FF0, 0x2FFF),
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x0F00, 0x0FFF),
)
# what the reference misses: Hiragana + Katakana, Katakana phonetic extensions, half-width
# katakana; Hangul syllables, Jamo and compatibility Jamo
MISSING_RANGES = (
    (0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF65, 0xFF9F),
    (0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F),
)
CORRECTED_RANGES = REFERENCE_RANGES + MISSING_RANGES
RANGE_SETS = {"reference": REFERENCE_RANGES, "corrected": CORRECTED_RANGES}

FULL_WIDTH_MARKS = "，。、；：？！“”‘’（）【】《》〈〉「」『』～—"
PUNCTUATION = frozenset(string.punctuation + FULL_WIDTH_MARKS)


def is_cjk_or_similar(char: str, ranges=REFERENCE_RANGES) -> bool:
    code = ord(char)
    return char in PUNCTUATION or any(lo <= code <= hi for lo, hi in ranges)


def pattern(entry: str, ranges=REFERENCE_RANGES) -> str:
    """The string searched for in the normalised caption (v2); "" is padded as in v1."""
    if not entry:
        return "  "
    left = "" if is_cjk_or_similar(entry[0], ranges) else " "
    right = "" if is_cjk_or_similar(entry[-1], ranges) else " "
    return f"{left}{entry}{right}"


def pattern_function(ranges_name: str):
    return partial(pattern, ranges=RANGE_SETS[ranges_name])
