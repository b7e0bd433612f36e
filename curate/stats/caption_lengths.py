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
_SEQUENCES = sorted({c.encode() for c in WHITESPACE}, key=len)


def _whitespace_starts(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(byte starts a white-space character, that character's length in bytes)."""
    starts = np.zeros(len(data), bool)
    sizes = np.zeros(len(data), np.int8)
    for sequence in _SEQUENCES:
        n = len(sequence)
        if len(data) < n:
            continue
        hit = data[: len(data) - n + 1] == sequence[0]
        for k in range(1, n):
            hit &= data[k: len(data) - n + 1 + k] == sequence[k]
        starts[: len(hit)] |= hit
        sizes[: len(hit)][hit] = n
    return starts, sizes


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
    # prefix sums: counts per caption are differences at its bounds
    char_prefix = np.concatenate([[0], np.cumsum((data & 0xC0) != 0x80)])
    starts, sizes = _whitespace_starts(data)
    in_space = np.zeros(len(data) + 1, bool)  # byte belongs to a white-space character
    for k in range(3):
        in_space[k:len(data)][starts[: len(data) - k] & (sizes[: len(data) - k] > k)] = True
    previous = np.concatenate([[False], in_space[:-2]])  # the byte before belongs to one
    run_starts = starts & ~previous
    at_caption_start = np.zeros(len(data), bool)
    at_caption_start[begin[(begin < end)]] = True
    run_starts |= starts & at_caption_start  # a caption's first character opens a run whatever precedes it
    run_prefix = np.concatenate([[0], np.cumsum(run_starts)])
    runs = run_prefix[end] - run_prefix[begin]
    # the last character: white space, and the character before it white space too (in this caption)
    trailing = np.zeros(n, bool)
    nonempty = np.flatnonzero(end > begin)
    last_byte = end[nonempty] - 1
    ends_in_space = in_space[last_byte]
    candidates = nonempty[ends_in_space]
    last_start = _start_of_char(data, end[candidates] - 1)
    before = last_start - 1
    inside = before >= begin[candidates]
    trailing[candidates[inside]] = in_space[before[inside]]
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    chars[valid] = (char_prefix[end] - char_prefix[begin])[valid]
    words[valid] = (1 + runs + trailing)[valid]
    return chars, words


def _start_of_char(data: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The first byte of the character that holds each byte position (back over continuation bytes)."""
    out = positions.copy()
    for _ in range(3):
        continuation = (out > 0) & ((data[out] & 0xC0) == 0x80)
        out[continuation] -= 1
    return out
