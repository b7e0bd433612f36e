"""Valid UTF-8 out of text that may carry bytes that were not: captions, file names, keys.

Python reads an undecodable byte as a lone surrogate (U+DC80..U+DCFF, `surrogateescape`), and a
JSON escape such as `\\ud83d` gives a lone surrogate too; Arrow, JSON writers and Beam's string
coder all refuse them. Text is cleaned (each bad byte or lone surrogate -> U+FFFD); a name is
escaped instead (each bad byte -> `\\xNN`, as Python's `backslashreplace`), with its raw bytes
kept as hex beside it, so the key stays faithful and the original is recoverable.
"""
from __future__ import annotations

import codecs

RAW_NAME = "source_key_bytes"  # ledger column: hex of a name that is not UTF-8 (source_key escaped)


def _surrogate_bytes(error: UnicodeEncodeError, lone: bytes | None) -> tuple[bytes, int]:
    """An escaped byte back to itself; any other surrogate to `lone` (None: its UTF-8 form)."""
    out = bytearray()
    for char in error.object[error.start:error.end]:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(code - 0xDC00)
        elif lone is not None:
            out += lone
        else:
            out += char.encode("utf-8", "surrogatepass")
    return bytes(out), error.end


codecs.register_error("curate.raw", lambda e: _surrogate_bytes(e, None))
codecs.register_error("curate.clean", lambda e: _surrogate_bytes(e, "\ufffd".encode()))


def is_clean(value: str) -> bool:
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def clean_text(value: str) -> str:
    """Text as valid UTF-8: bytes that were not, and lone surrogates, become U+FFFD."""
    if is_clean(value):
        return value
    return value.encode("utf-8", "curate.clean").decode("utf-8", "replace")


def raw_bytes(name: str) -> bytes:
    """The bytes a name was read from (its surrogate-escaped bytes restored)."""
    return name.encode("utf-8", "curate.raw")


def escape_name(name: str) -> str:
    """A name as valid UTF-8: each byte that is not UTF-8 written `\\xNN`; clean names unchanged."""
    if is_clean(name):
        return name
    return raw_bytes(name).decode("utf-8", "backslashreplace")


def name_bytes_hex(name: str) -> str | None:
    """The raw bytes of a name that is not valid UTF-8, as hex (None for a clean name)."""
    return None if is_clean(name) else raw_bytes(name).hex()


def escape_paths(paths: list[str]) -> tuple[list[str], dict[str, str]]:
    """Paths as valid UTF-8 (Beam's string coder refuses others) and the raw path of each escaped one."""
    escaped = [escape_name(p) for p in paths]
    return escaped, {e: p for e, p in zip(escaped, paths) if e != p}
