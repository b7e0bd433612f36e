"""One pass over a run's ledger parts feeding every statistic; parts split over processes.

`collect(output)` reads each ledger part once (only the columns some statistic needs), adds
it to every aggregate, and returns a RunStats with the results as pandas tables. With
`workers=N` the parts are split over N threads (Parquet decoding and Arrow kernels release the
GIL) whose aggregates merge: every aggregate is a sum of counts or fixed-bin histograms, so
the result does not depend on the split.
"""
from __future__ import annotations

import concurrent.futures
import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from curate.stats.distributions import (Captions, Images, Languages, Scores, score_columns, score_edges,
                                       signal_columns, signal_edges, signals)
from curate.stats.downloads import Downloads
from curate.stats.duplicates import Duplicates
from curate.stats.entries import ENTRY_IDS, Entries
from curate.stats.funnel import Funnel
from curate.stats.reader import RunOutput, iter_parquet, spread
from curate.stats.shards import shard_table

METACLIP = "MetaCLIP"


@dataclass
class RunStats:
    run: RunOutput
    parts_read: int
    aggregates: dict
    shards: pd.DataFrame
    entry_strings: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def stats(self) -> dict:
        return self.run.stats

    @property
    def sampled(self) -> bool:
        return self.parts_read < len(self.run.ledger_files_all)

    def get(self, name: str):
        return self.aggregates.get(name)

    @property
    def funnel(self) -> Funnel:
        return self.aggregates["funnel"]

    @property
    def t(self) -> float | None:
        return self.stats.get("stages", {}).get(METACLIP, {}).get("t")


def _first_part_range(run: RunOutput, columns: list[str]) -> dict[str, tuple[float, float]]:
    """min/max of some numeric columns in the first ledger part (to fix histogram bins up front)."""
    found = {}
    for table in iter_parquet(run.ledger_files[:1], columns):
        for column in columns:
            lo_hi = pc.min_max(table.column(column)).as_py()
            if lo_hi["min"] is not None:
                found[column] = (float(lo_hi["min"]), float(lo_hi["max"]))
    return found


def make_aggregates(run: RunOutput) -> dict:
    """Empty aggregates for the statistics this run's ledger has columns for."""
    available = run.ledger_columns
    reasons = list(run.stats.get("dropped_by_reason", {}))
    aggregates: dict = {"funnel": Funnel(), "images": Images(), "captions": Captions()}
    if Downloads.applies(available, reasons):
        aggregates["downloads"] = Downloads()
    scores = score_columns(run.ledger_schema)
    if scores:
        ranges = _first_part_range(run, scores)
        aggregates["scores"] = Scores({c: score_edges(*ranges.get(c, (-1.0, 1.0))) for c in scores})
    signal_aggregate = _signals(run)
    if signal_aggregate is not None:
        aggregates["signals"] = signal_aggregate
    language = Languages.find(available)
    if language:
        aggregates["languages"] = Languages(language)
    if ENTRY_IDS in available:
        size = run.stats.get("stages", {}).get(METACLIP, {}).get("metadata_entries", 0)
        aggregates["entries"] = Entries(size)
    if Duplicates.applies(available):
        aggregates["duplicates"] = Duplicates.for_columns(available)
    return aggregates


def _signals(run: RunOutput) -> Scores | None:
    """The image signals' distributions, when the ledger has any (curate.signals)."""
    columns = signal_columns(run.ledger_schema)
    if not columns:
        return None
    ranges = _first_part_range(run, columns)
    return signals({c: signal_edges(c, *ranges.get(c, (0.0, 1.0))) for c in columns})


def _needed_columns(aggregates: dict, available: list[str]) -> list[str]:
    wanted = dict.fromkeys(c for a in aggregates.values() for c in a.columns(available))
    present = set(available)
    return [c for c in wanted if c in present]


def _consume(files: list[str], columns: list[str], aggregates: dict) -> dict:
    for table in iter_parquet(files, columns):
        for aggregate in aggregates.values():
            aggregate.add(table)
    return aggregates


def _merge(into: dict, other: dict) -> dict:
    for name, aggregate in other.items():
        into[name].merge(aggregate)
    return into


def collect(output: str, parts: int | None = None, workers: int = 1, metadata: str | None = None) -> RunStats:
    """Every statistic of a run. `parts`: read only that many ledger parts, evenly spread."""
    run = output if isinstance(output, RunOutput) else RunOutput(output, parts)
    files = run.ledger_files
    available = run.ledger_columns
    empty = make_aggregates(run)
    columns = _needed_columns(empty, available)
    if workers > 1 and len(files) > 1:
        chunks = [files[i::workers] for i in range(min(len(files), workers))]
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(_consume, chunks, [columns] * len(chunks),
                                    [copy.deepcopy(empty) for _ in chunks]))
        aggregates = results[0]
        for other in results[1:]:
            _merge(aggregates, other)
    else:
        aggregates = _consume(files, columns, empty)
    funnel = aggregates["funnel"]
    for table in iter_parquet(spread(files, Funnel.coverage_tables), Funnel.coverage_columns(available)):
        funnel.add_coverage(table)
    result = RunStats(run, len(files), aggregates, shard_table(run))
    if "entries" in aggregates:
        result.entry_strings = _entry_strings(run, metadata, result.notes)
    if result.sampled:
        result.notes.append(f"read {len(files)} of {len(run.ledger_files_all)} ledger parts (evenly spread): "
                            "counts are of those parts only")
    return result


def _entry_strings(run: RunOutput, metadata: str | None, notes: list[str]) -> list[str] | None:
    from curate.errors import UsageError
    from curate.metaclip.metadata import load_metadata

    expected = run.stats.get("stages", {}).get(METACLIP, {}).get("metadata_entries")
    try:
        entries = load_metadata(metadata)
    except UsageError as e:
        notes.append(f"entry strings not shown: {e}")
        return None
    if expected is not None and len(entries) != expected:
        notes.append(f"entry strings not shown: the metadata file has {len(entries):,} entries, the run used "
                     f"{expected:,} (pass the run's --metadata)")
        return None
    return entries


def as_frame(values: dict) -> pd.DataFrame:
    """A dict of facts as a two-column table."""
    return pd.DataFrame({"fact": list(values), "value": [_plain(v) for v in values.values()]})


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value
