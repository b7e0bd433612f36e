"""`top_entries` in stats.json named by their text: `{"id", "entry", "count"}`, not bare ids.

MetaCLIP (v1) names its commonest entries in the graph (metaclip/stages.py `top_entries`);
MetaCLIP 2's ids index per-language lists and stay `[id, count]` pairs. `top_line` is the
summary's line of them; `name_top_entries` names pairs of an older stats.json.
"""
from __future__ import annotations


def name_top_entries(stats: dict, entries: list[str] | None) -> dict:
    """Rewrite every stage's `top_entries` pairs as named rows, in place; returns stats."""
    for facts in stats.get("stages", {}).values():
        top = facts.get("top_entries") if isinstance(facts, dict) else None
        if not entries or not isinstance(top, list):
            continue
        facts["top_entries"] = [_named(row, entries) for row in top]
    return stats


def _named(row, entries: list[str]):
    if isinstance(row, (list, tuple)) and len(row) == 2 and 0 <= int(row[0]) < len(entries):
        return {"id": int(row[0]), "entry": entries[int(row[0])], "count": int(row[1])}
    return row  # already named, or a shape this layer does not know


def top_line(facts: dict, n: int = 8) -> str | None:
    """`'a' 317, 'A' 245, ...`: the summary's line of the commonest entries, when named."""
    named = [r for r in facts.get("top_entries", []) if isinstance(r, dict) and "entry" in r][:n]
    return ", ".join(f"{r['entry']!r} {r['count']:,}" for r in named) or None
