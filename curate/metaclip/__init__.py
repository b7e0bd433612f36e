"""MetaCLIP curation: metadata, the reference substring matcher, entry balancing.

    from curate.metaclip import Matcher, load_metadata
    Matcher(["dog", "hot dog", "New York"]).match("a hot dog in New York.")  # -> [0, 1, 2]

Names load on first use, so importing a submodule (as recipes do) stays cheap.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Matcher": "curate.metaclip.matcher",
    "normalize": "curate.metaclip.matcher",
    "load_metadata": "curate.metaclip.metadata",
    "auto_t": "curate.metaclip.balance",
    "entry_probabilities": "curate.metaclip.balance",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'curate.metaclip' has no attribute {name!r}")
