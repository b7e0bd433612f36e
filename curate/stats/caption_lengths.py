"""Caption lengths in characters and words, from the UTF-8 bytes of an Arrow string column.

Counted with NumPy over the column's byte buffer (no Python loop per caption, no list per
caption): characters are the bytes that start a code point (Arrow's `utf8_length`); words are
what Arrow's `utf8_split_whitespace` returns, whose count is 1 + the runs of Unicode white space
(`WHITESPACE`, Arrow's set) + 1 more when the caption ends with two or more white-space
characters (Arrow splits the last of a trailing run off on its own). A NULL caption has no
length (NaN, left out of the histograms).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
              "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_ASCII = np.zeros(256, bool)  # one-byte white space, by byte value
_ASCII[[ord(c) for c in WHITESPACE if ord(c) < 0x80]] = True
_MULTI = sorted({c.encode() for c in WHITESPACE if ord(c) >= 0x80})  # 2 or 3 bytes, lead byte first
_LEAD = np.zeros(256, bool)
_LEAD[[s[0] for s in _MULTI]] = True


def _whitespace_starts(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(byte starts a white-space character, that character's length in bytes). Multi-byte ones
    are looked for only where a lead byte they start with is (rare in most captions)."""
    starts = _ASCII[data]
    sizes = starts.astype(np.int8)
    leads = np.flatnonzero(_LEAD[data])
    for sequence in _MULTI:
        at = leads[(data[leads] == sequence[0]) & (leads + len(sequence) <= len(data))]
        for k in range(1, len(sequence)):
            at = at[data[at + k] == sequence[k]]
        starts[at] = True
        sizes[at] = len(sequence)
    return starts, sizes


def _per_caption(marked: np.ndarray, begin: np.ndarray, nonempty: np.ndarray) -> np.ndarray:
    """How many marked bytes each caption holds (one pass; an empty caption holds none)."""
    out = np.zeros(len(begin), np.int64)
    if nonempty.size:
        out[nonempty] = np.add.reduceat(marked, begin[nonempty], dtype=np.int64)
    return out


def lengths(column) -> tuple[np.ndarray, np.ndarray]:
    """(characters, words) per caption as float64 arrays, NaN where the caption is NULL."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    array = array.cast(pa.large_string())
    n = len(array)
    chars = np.full(n, np.nan)
    words = np.full(n, np.nan)
    if n == 0:
        return chars, words
    offsets = np.frombuffer(array.buffers()[1], np.int64, n + 1, array.offset * 8)
    first, last = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(array.buffers()[2], np.uint8, last - first, first) if last > first else \
        np.empty(0, np.uint8)
    bounds = offsets - first
    begin, end = bounds[:-1], bounds[1:]
    nonempty = np.flatnonzero(end > begin)
    counted = (end - begin).astype(np.int64)  # bytes; minus continuation bytes = code points
    ascii_only = not data.size or int(data.max()) < 0x80  # most alt-text: one byte, one character
    if ascii_only:
        starts = _ASCII[data]
        in_space = starts  # the byte belongs to a white-space character
    else:
        counted -= _per_caption((data & 0xC0) == 0x80, begin, nonempty)
        starts, sizes = _whitespace_starts(data)
        in_space = starts.copy()
        for k in (1, 2):
            wide = np.flatnonzero(sizes > k)
            in_space[wide + k] = True
    opens = starts.copy()  # a white-space character after a non-white-space byte opens a run
    opens[1:] &= ~in_space[:-1]
    opens[begin[nonempty]] = starts[begin[nonempty]]  # a caption's first character opens one whatever precedes
    runs = _per_caption(opens, begin, nonempty)
    # Arrow splits the last white-space character of a trailing run of two or more off on its own
    trailing = np.zeros(n, bool)
    candidates = nonempty[in_space[end[nonempty] - 1]]
    before = _start_of_char(data, end[candidates] - 1) - 1
    inside = before >= begin[candidates]
    trailing[candidates[inside]] = in_space[before[inside]]
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    chars[valid] = counted[valid]
    words[valid] = (1 + runs + trailing)[valid]
    return chars, words


def _start_of_char(data: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The first byte of the character that holds each byte position (back over continuation bytes)."""
    out = positions.copy()
    for _ in range(3):
        continuation = (out > 0) & ((data[out] & 0xC0) == 0x80)
        out[continuation] -= 1
    return out
