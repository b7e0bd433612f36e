"""Metadata entries: which strings can be entries, merging sources into one list, writing it.

Shared by the English builder (build.py) and the per-language one (per_language.py).
"""
from __future__ import annotations

import collections
import json
import re
from pathlib import Path
from typing import Iterable

# Marks that the matcher turns into " mark "; a mark touching another character in an
# entry can never match, because in the caption a space always follows and precedes it.
MARKS = ",.;:?!`"
_UNMATCHABLE = re.compile(f"[^ ][{re.escape(MARKS)}]|[{re.escape(MARKS)}][^ ]")


def drop_reason(entry: str) -> str | None:
    """Why `entry` cannot be a metadata entry, or None when it can."""
    if not entry:
        return "empty"
    if any(c in entry for c in "\t\n\r"):
        return "control_whitespace"
    if entry != entry.strip(" "):
        return "edge_space"
    if _UNMATCHABLE.search(entry):
        return "unmatchable_mark"
    return None


def merge_sources(
    sources: Iterable[tuple[str, Iterable[str]]],
) -> tuple[list[str], dict[str, collections.Counter]]:
    """Concatenate sources in order, dropping invalid strings and repeats (first wins).

    Returns the entries and, per source, a Counter of `candidates`, `added`, `duplicate`
    and each drop reason.
    """
    entries: list[str] = []
    seen: set[str] = set()
    stats: dict[str, collections.Counter] = {}
    for name, strings in sources:
        counts = stats.setdefault(name, collections.Counter())
        for s in strings:
            counts["candidates"] += 1
            reason = drop_reason(s)
            if reason is None and s in seen:
                reason = "duplicate"
            if reason is not None:
                counts[reason] += 1
                continue
            seen.add(s)
            entries.append(s)
            counts["added"] += 1
    return entries, stats


def is_word(token: str) -> bool:
    return any(c.isalpha() for c in token)


def write_list(entries: list[str], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    # One entry per line keeps the committed file diffable.
    with open(out, "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries) + "\n]\n")


def format_summary(entries: list[str], stats: dict[str, collections.Counter]) -> str:
    lines = [f"{'source':<14}{'candidates':>11}{'added':>9}  dropped"]
    for name, c in stats.items():
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(c.items())
                            if k not in ("candidates", "added"))
        lines.append(f"{name:<14}{c['candidates']:>11}{c['added']:>9}  {dropped or '-'}")
    lines.append(f"{'total':<14}{'':>11}{len(entries):>9}")
    return "\n".join(lines)


# --- titles (a source of both builders) -------------------------------------------------


def read_titles(path: str | Path, top: int | None = None) -> list[str]:
    """Titles from a file of `title` or `title<TAB>page_views` lines.

    With page views the titles are ranked by them (stable), otherwise kept in file order;
    `top` keeps the first N. Underscores become spaces, as MediaWiki titles in dumps use
    them for spaces; the `page_title` header of enwiki's all-titles dump is skipped.
    """
    titles: list[tuple[str, int]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            title, _, views = line.rstrip("\r\n").partition("\t")
            if title == "page_title" and not titles:
                continue
            titles.append((title.replace("_", " "), int(views) if views else 0))
    if any(views for _, views in titles):
        titles.sort(key=lambda x: -x[1])
    return [t for t, _ in titles[:top]]
