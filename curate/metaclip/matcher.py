"""MetaCLIP substring matching, exactly as the paper's reference defines it.

The caption is wrapped in one space on each side; each of , . ; : ? ! ` becomes " mark ";
each of tab, newline, carriage return becomes one space; nothing else changes (case kept,
runs of spaces kept, no Unicode normalisation). Entry e matches iff " e " occurs in that text.

`Matcher` gets the same answer as an Aho-Corasick automaton over " e " keys, faster: since
every key starts and ends with a space, an occurrence of " e " is exactly a run of
space-separated tokens of the text equal to e's tokens, so matching is dictionary lookups of
token n-grams, walking only as far as some multi-word entry's prefix continues.
"""
from __future__ import annotations

from typing import Iterable, Sequence

MARKS = ",.;:?!`"
_SPACING = str.maketrans({**{m: f" {m} " for m in MARKS}, "\t": " ", "\n": " ", "\r": " "})


def normalize(text: str) -> str:
    """The text MetaCLIP searches in: padded, marks spaced out, tab/newline/CR as spaces."""
    return " " + text.translate(_SPACING) + " "


class Matcher:
    """Matches captions against metadata entries; `match(text)` -> ascending entry ids."""

    def __init__(self, entries: Sequence[str]):
        self.size = len(entries)
        self._single: dict[str, int] = {}  # one-token entries -> first id of that string
        self._multi: dict[str, int] = {}  # multi-token entries -> first id
        self._prefixes: set[str] = set()  # token prefixes of multi-token entries
        self._duplicates: dict[int, tuple[int, ...]] = {}  # first id -> every id of a repeated string
        for entry_id, entry in enumerate(entries):
            table = self._multi if " " in entry else self._single
            first = table.setdefault(entry, entry_id)
            if first != entry_id:
                self._duplicates[first] = self._duplicates.get(first, (first,)) + (entry_id,)
                continue
            if table is self._multi:
                tokens = entry.split(" ")
                for n in range(1, len(tokens)):
                    self._prefixes.add(" ".join(tokens[:n]))
        self._starts = {p for p in self._prefixes if " " not in p}

    def match(self, text: str) -> list[int]:
        # tokens[0] and tokens[-1] are the empty strings outside the padding spaces
        tokens = normalize(text).split(" ")
        inner = tokens[1:-1]
        get = self._single.get
        ids = [i for i in map(get, inner) if i is not None]
        if self._multi and not self._starts.isdisjoint(inner):
            ids.extend(self._multi_word(inner))
        if not ids:
            return ids
        if self._duplicates:
            ids = [d for i in ids for d in self._duplicates.get(i, (i,))]
        return sorted(set(ids))

    def _multi_word(self, inner: list[str]) -> list[int]:
        found, starts, prefixes, multi = [], self._starts, self._prefixes, self._multi
        last = len(inner)
        for j, token in enumerate(inner):
            if token not in starts:
                continue
            key, k = token, j + 1
            while k < last:
                key = key + " " + inner[k]
                k += 1
                entry_id = multi.get(key)
                if entry_id is not None:
                    found.append(entry_id)
                if key not in prefixes:
                    break
        return found

    def match_many(self, texts: Iterable[str]) -> list[list[int]]:
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
