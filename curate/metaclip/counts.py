"""MetaCLIP v1's global step: one matcher per process, entry-id columns, entry counts combined
over the pool, p_e per worker, and the facts stats.json shows."""
from __future__ import annotations

from itertools import chain

import apache_beam as beam
import numpy as np
import pyarrow as pa

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


def entry_id_column(lengths: np.ndarray, flat: np.ndarray) -> pa.Array:
    """Entry-id lists laid end to end (`lengths[k]` ids for row k) as one Arrow list column."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.int32()))


def entry_ids_of(column, n: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ids per row, every id end to end) of an entry-id column: an Arrow list array, a list of
    lists (None for a row without ids) or None (no row has ids; `n` rows)."""
    if column is None:
        return np.zeros(n, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if isinstance(column, (pa.ListArray, pa.LargeListArray)):
        lengths = np.asarray(column.value_lengths().fill_null(0), dtype=np.int64)
        return lengths, np.asarray(column.flatten(), dtype=np.int64)
    lengths = np.fromiter((len(ids or ()) for ids in column), dtype=np.int64, count=len(column))
    flat = np.fromiter(chain.from_iterable(ids or () for ids in column), dtype=np.int64, count=int(lengths.sum()))
    return lengths, flat


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
