"""A list file -> its entries as sorted, distinct fixed-width rows (N x width uint8).

Lines: one hash in hex (case ignored) or, for `url` lists, one URL; blank lines and lines
starting with `#` are skipped, and so is a first line that is a header (`hash,quality,...`).
In a hash list only the first comma-separated field counts (ThreatExchange writes
`hash,quality,...`); a `url` list's entry is the whole line, since URLs hold commas, and is
stored as the MD5 of its bytes (what a `url_md5` list holds). A line that is not a hash of the
list's kind refuses the list with its line number: a list silently missing an entry is worse
than a run that does not start.

Files are read in blocks and decoded with NumPy, so a list of tens of millions of lines costs
its rows (16-32 bytes each), not Python objects.
"""
from __future__ import annotations

import hashlib
from typing import Iterator

import numpy as np
from apache_beam.io.filesystems import FileSystems

from curate.blocklist.names import WIDTH
from curate.blocklist.options import ListSpec
from curate.errors import UsageError

BLOCK_BYTES = 32 * 2**20
_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i


class ListError(UsageError):
    pass


def _lines(path: str, digest) -> Iterator[tuple[int, list[bytes]]]:
    """(number of the first line, lines) per block of the file; `digest` sees every byte."""
    number, rest = 1, b""
    with FileSystems.open(path) as f:
        while True:
            block = f.read(BLOCK_BYTES)
            digest.update(block)
            if not block:
                break
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            yield number, lines
            number += len(lines)
    if rest:
        yield number, [rest]


def _entry(line: bytes, kind: str) -> bytes:
    line = line.strip()
    return line if kind == "url" else line.split(b",", 1)[0].strip()


def _is_entry(field: bytes, kind: str) -> bool:
    if kind == "url":
        return bool(field)
    width = 2 * WIDTH[kind]
    return len(field) == width and bool((_HEX[np.frombuffer(field, np.uint8)] != 255).all())


def _is_header(field: bytes, kind: str) -> bool:
    """A first line that names its columns (`hash`, `md5`, `pdq_hash`): a word with a letter
    that is not a hex digit; a mistyped hash (hex digits only) is refused instead."""
    if kind == "url" or _is_entry(field, kind):
        return False
    word = field.lower()
    return word.replace(b"_", b"").replace(b"-", b"").replace(b" ", b"").isalnum() and any(
        c in b"ghijklmnopqrstuvwxyz" for c in word)


def _decode_hex(fields: list[bytes], width: int) -> np.ndarray | None:
    """N x width rows from N hex strings of 2*width characters; None when one is not hex."""
    if any(len(f) != 2 * width for f in fields):
        return None
    nibbles = _HEX[np.frombuffer(b"".join(fields), np.uint8)].reshape(len(fields), 2 * width)
    if (nibbles == 255).any():
        return None
    return (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]


def _refuse(spec: ListSpec, first: int, fields: list[bytes]) -> None:
    for i, field in enumerate(fields):
        if field and not field.startswith(b"#") and not _is_entry(field, spec.kind):
            shown = field[:80].decode("utf-8", "replace")
            raise ListError(f"--block_list {spec.kind}:{spec.path}: line {first + i}: {shown!r} is not a "
                            f"{2 * WIDTH[spec.kind]}-character hex {spec.kind} hash")
    raise AssertionError("no bad line found")  # pragma: no cover


def read_list(spec: ListSpec) -> tuple[np.ndarray, str]:
    """(sorted distinct rows, N x width uint8; sha256 of the file's bytes)."""
    width = WIDTH[spec.kind]
    digest = hashlib.sha256()
    parts: list[np.ndarray] = []
    header_checked = False
    for first, lines in _lines(spec.path, digest):
        fields = [_entry(line, spec.kind) for line in lines]
        if not header_checked:
            content = [f for f in fields if f and not f.startswith(b"#")]
            if content and _is_header(content[0], spec.kind):
                fields[fields.index(content[0])] = b""
            header_checked = bool(content)
        entries = [f for f in fields if f and not f.startswith(b"#")]
        if not entries:
            continue
        if spec.kind == "url":
            rows = np.frombuffer(b"".join(hashlib.md5(f).digest() for f in entries), np.uint8).reshape(-1, width)
        else:
            rows = _decode_hex(entries, width)
            if rows is None:
                _refuse(spec, first, fields)
        parts.append(np.unique(rows.view(f"S{width}").ravel()))
    if not parts:
        return np.zeros((0, width), np.uint8), digest.hexdigest()
    distinct = np.unique(np.concatenate(parts))
    return distinct.view(np.uint8).reshape(-1, width), digest.hexdigest()
