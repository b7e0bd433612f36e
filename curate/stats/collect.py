"""Every statistic of a run, computed by DuckDB over its ledger parts.

`collect(output)` opens the run's ledger parts as the DuckDB view `ledger` (curate.ledger:
bounded memory, spilling to a private temporary folder) and asks each statistic's queries of
it; only aggregates come back (counts per bin, per reason, per host, per entry, per cluster
size), never the rows. `workers` is DuckDB's thread count (default: one per core), `parts`
reads an evenly spread subset of the parts (a quick look at a huge run).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from curate.ledger.connection import add_ledger_view, connect
from curate.stats.distributions import Captions, Images, Languages, Scores, score_columns, signal_columns
from curate.stats.downloads import Downloads
from curate.stats.duplicates import Duplicates
from curate.stats.entries import ENTRY_IDS, Entries
from curate.stats.funnel import Funnel
from curate.stats.reader import RunOutput, spread
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


def aggregates(con: duckdb.DuckDBPyConnection, run: RunOutput) -> dict:
    """Each statistic the ledger has columns for, by name."""
    types = {row[0]: row[1] for row in con.execute("DESCRIBE ledger").fetchall()}
    available = list(types)
    reasons = list(run.stats.get("dropped_by_reason", {}))
    found: dict = {"funnel": Funnel.read(con, spread(run.ledger_files, Funnel.coverage_tables), available),
                   "images": Images.read(con, types), "captions": Captions.read(con, types)}
    if Downloads.applies(available, reasons):
        found["downloads"] = Downloads.read(con, types)
    if score_columns(types):
        found["scores"] = Scores.read(con, types, run.ledger_files)
    if signal_columns(types):
        found["signals"] = Scores.read(con, types, run.ledger_files, signals=True)
    language = Languages.find(available)
    if language:
        found["languages"] = Languages.read(con, language)
    if ENTRY_IDS in available:
        found["entries"] = Entries.read(con, run.stats.get("stages", {}).get(METACLIP, {}).get("metadata_entries", 0))
    if Duplicates.applies(available):
        found["duplicates"] = Duplicates.read(con, types)
    return found


def collect(output: str, parts: int | None = None, workers: int | None = None, metadata: str | None = None) -> RunStats:
    """Every statistic of a run. `parts`: read only that many ledger parts, evenly spread;
    `workers`: DuckDB's threads (None: one per core)."""
    run = output if isinstance(output, RunOutput) else RunOutput(output, parts)
    files = run.ledger_files
    con = connect(threads=workers)
    try:
        add_ledger_view(con, files)
        found = aggregates(con, run)
    finally:
        con.close()  # DuckDB removes its spill folder
    result = RunStats(run, len(files), found, shard_table(run))
    if "entries" in found:
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
