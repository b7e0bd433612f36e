"""MetaCLIP metadata: a JSON list of strings, entry id = position in the list.

The shipped default list lives in the `metadata` package (built by `python -m metadata.build`);
MetaCLIP's official 500k-entry `metadata.json` has the same form and loads the same way.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache

from curate.errors import UsageError
from curate.io import files as fs

DEFAULT = "default"


def default_path() -> str:
    import metadata

    return os.path.join(os.path.dirname(metadata.__file__), "default.json")


def resolve(path: str | None) -> str:
    return default_path() if path in (None, "", DEFAULT) else path


def load_metadata(path: str | None = None) -> list[str]:
    """Entries of a metadata file; raises UsageError naming the problem."""
    path = resolve(path)
    try:
        raw = fs.read_bytes(path)
    except Exception as e:  # Beam wraps missing files in several error types
        raise UsageError(f"--metadata: cannot read {path}: {type(e).__name__}") from None
    try:
        entries = json.loads(raw)
    except ValueError as e:
        raise UsageError(f"--metadata: {path} is not JSON ({e})") from None
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise UsageError(f"--metadata: {path} must be a JSON list of strings")
    if not entries:
        raise UsageError(f"--metadata: {path} is an empty list")
    return entries


@lru_cache(maxsize=4)
def cached_metadata(path: str | None) -> tuple[str, ...]:
    """One copy per worker process, whatever the number of DoFn instances."""
    return tuple(load_metadata(path))
