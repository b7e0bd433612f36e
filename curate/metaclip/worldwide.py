"""MetaCLIP 2 (worldwide) curation: per-language metadata, matching and thresholds.

A caption is matched only against the metadata of its language (lid.176, then
languages.metadata_language). Counts are per language; English keeps t_en and every other
language gets the t at which its own head/tail split has the tail share English has:

    p = t_to_p(counts_en, t_en)         share of English matches in entries with count < t_en
    t_lang = p_to_t(counts_lang, p)     the count where the sorted cumulative share is nearest p

(MetaCLIP 2's `curation/curate.py`, exactly, zero-count entries included). Then, within the
caption's language, p_e = min(1, t_lang / count_e) and the caption is kept with probability
1 - prod(1 - p_e), each draw a fixed function of (uid, language, entry, seed).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from curate.errors import UsageError
from curate.metaclip import balance
from curate.metaclip.languages import detect_language, metadata_language, parse_language_map
from curate.metaclip.matcher import Matcher
from curate.metaclip.metadata import load_metadata
from curate.metaclip.padding import pattern_function

ENGLISH = "en"
METACLIP2_T_EN = 170_000  # MetaCLIP 2's t for English (also MetaCLIP's t for its 2.5B set)
METACLIP2_POOL = 2_500_000_000  # English captions that t_en = 170k is scaled from
DEFAULT = "default"


@dataclass(frozen=True)
class Worldwide:
    """MetaCLIP 2 settings beyond v1's: padding ranges and the language alias overrides."""

    ranges: str = "reference"  # or "corrected" (padding.CORRECTED_RANGES)
    language_map: str | None = None  # --language_map, applied over languages.ALIASES


def default_folder() -> str:
    import metadata

    return os.path.join(os.path.dirname(metadata.__file__), "languages")


def resolve_folder(path: str | None) -> str:
    return default_folder() if path in (None, "", DEFAULT) else path.rstrip("/")


@lru_cache(maxsize=4)
def language_files(folder: str | None) -> dict[str, str]:
    """{language: path of its JSON list} in a metadata folder; UsageError when there is none."""
    folder = resolve_folder(folder)
    try:
        found = FileSystems.match([FileSystems.join(folder, "*.json")])[0].metadata_list
    except Exception as e:  # Beam wraps a missing folder in several error types
        raise UsageError(f"--metadata: cannot list {folder}: {type(e).__name__}") from None
    files = {os.path.basename(m.path)[: -len(".json")]: m.path for m in found}
    if not files:
        raise UsageError(f"--metadata: {folder} holds no <language>.json lists (MetaCLIP 2 needs a folder)")
    return dict(sorted(files.items()))


@lru_cache(maxsize=64)
def language_entries(folder: str | None, language: str) -> tuple[str, ...]:
    """One copy per worker process of a language's entries."""
    return tuple(load_metadata(language_files(folder)[language]))


def language_sizes(folder: str | None) -> dict[str, int]:
    return {lang: len(language_entries(folder, lang)) for lang in language_files(folder)}


def language_key(language: str) -> np.uint64:
    """A fixed 64-bit key per language code (mixed into the uid before the draw)."""
    return np.uint64(int.from_bytes(hashlib.blake2b(language.encode(), digest_size=8).digest(), "big"))


# --- thresholds ------------------------------------------------------------------------


def t_to_p(counts: np.ndarray, t: float) -> float:
    """Share of all matches that fall in entries with count < t (0 when nothing matched)."""
    total = counts.sum()
    return float(counts[counts < t].sum() / total) if total else 0.0


def p_to_t(counts: np.ndarray, p: float) -> float:
    """The count at the first position of the sorted counts whose cumulative share is nearest p."""
    ordered = np.sort(np.asarray(counts))
    total = ordered.sum()
    if not total:
        return 0.0
    share = np.cumsum(ordered) / total
    return float(ordered[int(np.abs(share - p).argmin())])


def auto_t_en(english_pool: int) -> float:
    return max(balance.MIN_AUTO_T, METACLIP2_T_EN * english_pool / METACLIP2_POOL)


def thresholds(counted: dict, t: float | None) -> tuple[dict[str, float], float | None, str]:
    """({language: t}, p, how t_en was chosen) from the global per-language counts."""
    languages = counted["languages"]
    en_counts, en_pool, _ = languages.get(ENGLISH, (None, 0, 0))
    t_en = t if t is not None else auto_t_en(en_pool)
    source = ("t_en from --t" if t is not None else
              f"t_en auto: MetaCLIP 2's {METACLIP2_T_EN:,} scaled to this pool's English captions "
              f"({en_pool:,} vs {METACLIP2_POOL:,}), at least {balance.MIN_AUTO_T:g}")
    if en_counts is None or not en_counts.sum():
        return {lang: t_en for lang in languages}, None, source + "; no English matches: every language uses t_en"
    p = t_to_p(en_counts, t_en)
    per_language = {lang: (t_en if lang == ENGLISH else p_to_t(c, p)) for lang, (c, _, _) in languages.items()}
    return per_language, p, source + f"; other languages: t = p_to_t(counts, p = t_to_p(counts_en, t_en) = {p:.4f})"


_PLAN: dict = {}


def cached_plan(counted: dict, t: float | None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Per-language t and p_e arrays, computed once per worker for the side input's value."""
    key = (id(counted), t)
    if key not in _PLAN:
        _PLAN.clear()
        ts, _, _ = thresholds(counted, t)
        probabilities = {lang: balance.entry_probabilities(c, ts[lang])
                         for lang, (c, _, _) in counted["languages"].items()}
        _PLAN[key] = (counted, ts, probabilities)
    return _PLAN[key][1], _PLAN[key][2]


# --- matching --------------------------------------------------------------------------


class WorldwideMatcher:
    """caption -> (detected code, score, metadata language or None, matched ids or None)."""

    def __init__(self, folder: str | None, ranges: str = "reference", language_map: str | None = None):
        self.folder = folder
        self.available = frozenset(language_files(folder))
        self.table = parse_language_map(language_map)
        self.key = pattern_function(ranges)
        self.matchers: dict[str, Matcher] = {}

    def matcher(self, language: str) -> Matcher:
        found = self.matchers.get(language)
        if found is None:
            found = self.matchers[language] = Matcher(language_entries(self.folder, language), key=self.key,
                                                      strip=True)
        return found

    def match(self, caption: str):
        code, score = detect_language(caption)
        language = metadata_language(code, self.available, self.table)
        if language is None:
            return code, score, None, None
        return code, score, language, self.matcher(language).match(caption)


_MATCHERS: dict = {}


def shared_matcher(folder: str | None, ranges: str, language_map: str | None) -> WorldwideMatcher:
    """One matcher per worker process and settings (built on first use, never pickled)."""
    key = (folder, ranges, language_map)
    if key not in _MATCHERS:
        _MATCHERS[key] = WorldwideMatcher(folder, ranges, language_map)
    return _MATCHERS[key]


class LanguageCounts:
    """Per-language entry counts of a batch or bundle, summed on the worker before they are sent."""

    def __init__(self, sizes: dict[str, int]):
        self.sizes = sizes
        self.languages: dict[str, list] = {}  # language -> [counts, pool, matched]
        self.pending: dict[str, list[int]] = {}  # ids not yet added to counts (one numpy call per block)
        self.no_metadata: dict[str, int] = {}

    def add(self, language: str | None, code: str, ids) -> None:
        if language is None:
            self.no_metadata[code] = self.no_metadata.get(code, 0) + 1
            return
        acc = self.languages.get(language)
        if acc is None:
            acc = self.languages[language] = [np.zeros(self.sizes[language], dtype=np.int64), 0, 0]
            self.pending[language] = []
        acc[1] += 1
        if ids:
            self.pending[language].extend(ids)
            acc[2] += 1

    def flush(self) -> None:
        """Adds the pending ids to the counts (call per block: bounds what is pending)."""
        for language, ids in self.pending.items():
            if ids:
                found, times = np.unique(np.array(ids, dtype=np.int64), return_counts=True)
                self.languages[language][0][found] += times
                ids.clear()

    def sparse(self) -> tuple:
        """(language, ids, times, pool, matched) per language + no-metadata counts: small to send."""
        self.flush()
        rows = []
        for lang, (counts, pool, matched) in sorted(self.languages.items()):
            ids = np.flatnonzero(counts)
            rows.append((lang, ids, counts[ids], pool, matched))
        return tuple(rows), dict(sorted(self.no_metadata.items()))


class CountLanguages(beam.CombineFn):
    """LanguageCounts.sparse() values -> {"languages": {lang: (counts, pool, matched)},
    "no_language_metadata": {code: captions}} over the whole pool."""

    def __init__(self, sizes: dict[str, int]):
        self.sizes = sizes

    def create_accumulator(self):
        return {}, {}

    def add_input(self, acc, sparse):
        languages, no_metadata = acc
        rows, missing = sparse
        for lang, ids, times, pool, matched in rows:
            entry = languages.get(lang)
            if entry is None:
                entry = languages[lang] = [np.zeros(self.sizes[lang], dtype=np.int64), 0, 0]
            np.add.at(entry[0], ids, times)
            entry[1] += pool
            entry[2] += matched
        for code, n in missing.items():
            no_metadata[code] = no_metadata.get(code, 0) + n
        return acc

    def merge_accumulators(self, accs):
        merged = self.create_accumulator()
        for languages, no_metadata in accs:
            for lang, (counts, pool, matched) in languages.items():
                entry = merged[0].setdefault(lang, [np.zeros(self.sizes[lang], dtype=np.int64), 0, 0])
                entry[0] += counts
                entry[1] += pool
                entry[2] += matched
            for code, n in no_metadata.items():
                merged[1][code] = merged[1].get(code, 0) + n
        return merged

    def extract_output(self, acc):
        languages, no_metadata = acc
        return {"languages": {lang: tuple(v) for lang, v in sorted(languages.items())},
                "no_language_metadata": dict(sorted(no_metadata.items()))}


class SumCounts(beam.CombineFn):
    """{key: n} dicts -> their sum (kept captions per language)."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, counts):
        for k, n in counts.items():
            acc[k] = acc.get(k, 0) + n
        return acc

    def merge_accumulators(self, accs):
        merged: dict = {}
        for acc in accs:
            self.add_input(merged, acc)
        return merged

    def extract_output(self, acc):
        return dict(sorted(acc.items()))


# --- balancing -------------------------------------------------------------------------


def select(uids: list[str], languages: list[str], id_lists: list[list[int]], counted: dict, t: float | None,
           seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For matched captions (each with its language): kept?, keep probability, the t used."""
    ts, probabilities = cached_plan(counted, t)
    n = len(uids)
    kept, keep_prob, used_t = np.zeros(n, dtype=bool), np.zeros(n), np.zeros(n)
    keys = balance.uid_keys(uids)
    by_language: dict[str, list[int]] = {}
    for i, lang in enumerate(languages):
        by_language.setdefault(lang, []).append(i)
    for lang, rows in sorted(by_language.items()):
        picked = np.array(rows, dtype=np.int64)
        lang_keys = keys[picked] ^ language_key(lang)
        k, p = balance.select(lang_keys, [id_lists[i] for i in rows], probabilities[lang], seed)
        kept[picked], keep_prob[picked], used_t[picked] = k, p, ts[lang]
    return kept, keep_prob, used_t


def summarize(counted: dict, kept: dict, t: float | None, sizes: dict[str, int]) -> dict:
    """stats.json's MetaCLIP facts: the v1 keys (t is t_en) plus a row per language."""
    ts, p, source = thresholds(counted, t)
    rows, matched_entries, over_t, matches, pool = {}, 0, 0, 0, 0
    for lang, (counts, lang_pool, matched) in counted["languages"].items():
        lang_t = ts[lang]
        rows[lang] = {"pool": int(lang_pool), "matched": int(matched), "kept": int(kept.get(lang, 0)),
                      "t": float(lang_t), "metadata_entries": int(counts.size),
                      "entries_matched": int((counts > 0).sum()), "entries_over_t": int((counts > lang_t).sum()),
                      "matches": int(counts.sum())}
        matched_entries += rows[lang]["entries_matched"]
        over_t += rows[lang]["entries_over_t"]
        matches += rows[lang]["matches"]
        pool += lang_pool
    en_pool = counted["languages"].get(ENGLISH, (None, 0, 0))[1]
    no_metadata = counted["no_language_metadata"]
    return {
        "version": 2,
        "t": float(t if t is not None else auto_t_en(en_pool)),
        "t_source": source,
        "p": p,
        "pool": int(pool + sum(no_metadata.values())),
        "metadata_entries": int(sum(sizes.values())),
        "metadata_languages": len(sizes),
        "entries_matched": int(matched_entries),
        "entries_over_t": int(over_t),
        "matches": int(matches),
        "languages": rows,
        "no_language_metadata": no_metadata,
    }
