"""MetaCLIP v1's global step, the same in both graphs: one matcher per process, entry counts
combined over the pool, p_e per worker, and the facts stats.json shows."""
from __future__ import annotations

import apache_beam as beam
import numpy as np

from curate.metaclip import balance
from curate.metaclip.matcher import Matcher
from curate.metaclip.metadata import cached_metadata

_MATCHERS: dict = {}


def shared_matcher(metadata_path: str | None) -> Matcher:
    """One matcher per worker process, built on first use (not pickled with the graph)."""
    matcher = _MATCHERS.get(metadata_path)
    if matcher is None:
        matcher = _MATCHERS[metadata_path] = Matcher(cached_metadata(metadata_path))
    return matcher


class CountEntries(beam.CombineFn):
    """(distinct entry ids, their counts, captions) per batch or bundle -> (count per entry,
    pool size) over the whole pool."""

    def __init__(self, size: int):
        self.size = size

    def create_accumulator(self):
        return np.zeros(self.size, dtype=np.int64), 0

    def add_input(self, acc, batch_counts):
        counts, pool = acc
        ids, times, n = batch_counts
        np.add.at(counts, ids, times)
        return counts, pool + n

    def merge_accumulators(self, accs):
        accs = iter(accs)
        counts, pool = next(accs)
        for other, n in accs:
            counts = counts + other
            pool += n
        return counts, pool

    def extract_output(self, acc):
        return acc


_PROBABILITY_CACHE: dict = {}


def cached_probabilities(counts: np.ndarray, t: float) -> np.ndarray:
    """p_e for the whole metadata, computed once per worker for the side input's value."""
    key = (id(counts), t)
    if key not in _PROBABILITY_CACHE:
        _PROBABILITY_CACHE.clear()
        _PROBABILITY_CACHE[key] = (counts, balance.entry_probabilities(counts, t))
    return _PROBABILITY_CACHE[key][1]


def top_entries(counts: np.ndarray, entries, n: int = 20) -> list[dict]:
    """The commonest matched entries, named: `{"id", "entry", "count"}` rows (stats.json)."""
    return [{"id": int(i), "entry": entries[i], "count": int(counts[i])}
            for i in np.argsort(-counts, kind="stable")[:n] if counts[i]]


def summarize(counted, t: float | None, metadata_path: str | None) -> dict:
    """stats.json's MetaCLIP facts (v1), top entries named from the metadata the run matched."""
    counts, pool = counted
    entries = cached_metadata(metadata_path)
    t_used = t if t is not None else balance.auto_t(pool)
    matched = counts[counts > 0]
    head = counts[counts > t_used]
    total_matches = int(counts.sum())
    return {
        "t": t_used,
        "t_source": "--t" if t is not None else
        f"auto: MetaCLIP's t={balance.METACLIP_T} scaled to this pool "
        f"({pool} captions vs {balance.METACLIP_POOL:,}), at least {balance.MIN_AUTO_T:g}",
        "pool": int(pool),
        "metadata_entries": len(entries),
        "entries_matched": int(matched.size),
        "entries_over_t": int(head.size),
        "matches": total_matches,
        "head_share_of_matches": float(head.sum() / total_matches) if total_matches else 0.0,
        "top_entries": top_entries(counts, entries),
    }
