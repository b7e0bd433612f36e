"""`top_entries` in stats.json named by their text: `{"id", "entry", "count"}`, not bare ids.

MetaCLIP (v1) names its commonest entries in the graph (metaclip/stage.py `top_entries`);
MetaCLIP 2's ids index per-language lists and stay `[id, count]` pairs. `top_line` is the
summary's line of the named ones.
"""
from __future__ import annotations


def top_line(facts: dict, n: int = 8) -> str | None:
    """`'a' 317, 'A' 245, ...`: the summary's line of the commonest entries, when named."""
    named = [r for r in facts.get("top_entries", []) if isinstance(r, dict) and "entry" in r][:n]
    return ", ".join(f"{r['entry']!r} {r['count']:,}" for r in named) or None
