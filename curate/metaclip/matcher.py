"""MetaCLIP substring matching, exactly as the paper's reference defines it.

The caption is wrapped in one space on each side; each of , . ; : ? ! ` becomes " mark ";
each of tab, newline, carriage return becomes one space; nothing else changes (case kept,
runs of spaces kept, no Unicode normalisation). Entry e matches iff " e " occurs in that text.

`Matcher` is the fast implementation; `AhoCorasickMatcher` the plain one it is tested and
benchmarked against.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Sequence

MARKS = ",.;:?!`"


_first = itemgetter(0)


def normalize(text: str) -> str:
    """The text MetaCLIP searches in: padded, marks spaced out, tab/newline/CR as spaces.

    Chained str.replace (a C scan each) is ~4x faster than str.translate with a mapping; the
    inserted spaces contain no mark, so the order of replacements does not matter.
    """
    for mark in MARKS:
        if mark in text:
            text = text.replace(mark, f" {mark} ")
    return " " + text.replace("\t", " ").replace("\n", " ").replace("\r", " ") + " "


class Matcher:
    """Matches captions against metadata entries; `match(text)` -> ascending entry ids.

    One Aho-Corasick automaton over the distinct " e " keys (ahocorasick-rs, a compact automaton
    in Rust), overlapping matches returned as index tuples and reduced in C (set / map /
    sorted): no Python code runs per match. A string listed twice keeps all its ids.
    """

    def __init__(self, entries: Sequence[str], key=None, strip: bool = False):
        """`key` maps an entry to its search string (default v1's " e "; MetaCLIP 2: padding.pattern);
        `strip`: strip the caption first (MetaCLIP 2's curation does, v1's does not)."""
        import ahocorasick_rs

        self.size = len(entries)
        self.strip = strip
        keys: list[str] = []
        self._ids: list[int] = []  # key index -> first entry id of that string
        first_of: dict[str, int] = {}
        self._duplicates: dict[int, tuple[int, ...]] = {}  # first id -> every id of a repeated string
        for entry_id, entry in enumerate(entries):
            first = first_of.setdefault(entry, entry_id)
            if first != entry_id:
                self._duplicates[first] = self._duplicates.get(first, (first,)) + (entry_id,)
                continue
            keys.append(f" {entry} " if key is None else key(entry))
            self._ids.append(entry_id)
        if self._ids == list(range(len(self._ids))):
            self._ids = None  # distinct entries: key index == entry id, no look-up per match
        self._find = None
        if keys:
            automaton = ahocorasick_rs.AhoCorasick(keys, matchkind=ahocorasick_rs.MatchKind.Standard)
            self._find = automaton.find_matches_as_indexes

    def match(self, text: str) -> list[int]:
        if self._find is None:
            return []
        keys = set(map(_first, self._find(normalize(text.strip() if self.strip else text), overlapping=True)))
        ids = sorted(keys if self._ids is None else map(self._ids.__getitem__, keys))
        if self._duplicates and ids:
            ids = sorted(d for i in ids for d in self._duplicates.get(i, (i,)))
        return ids

    def match_many(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.match(t) for t in texts]


class AhoCorasickMatcher:
    """The plain implementation: one pyahocorasick automaton over the " e " keys.

    Kept as the reference the fast Matcher is tested and benchmarked against.
    """

    def __init__(self, entries: Sequence[str]):
        import ahocorasick

        self.size = len(entries)
        self._automaton = ahocorasick.Automaton()
        for entry_id, entry in enumerate(entries):
            key = f" {entry} "
            if key in self._automaton:
                self._automaton.add_word(key, self._automaton.get(key) + (entry_id,))
            else:
                self._automaton.add_word(key, (entry_id,))
        if entries:
            self._automaton.make_automaton()

    def match(self, text: str) -> list[int]:
        if not self.size:
            return []
        ids: set[int] = set()
        for _, entry_ids in self._automaton.iter(normalize(text)):
            ids.update(entry_ids)
        return sorted(ids)
