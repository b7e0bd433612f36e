"""Read a run's output folder: stats.json, ledger parts, shard sidecars; local, gs://, s3://.

Remote paths go through Beam's FileSystems (curate.io.files), so a path on any filesystem Beam
knows (gs:// with the gcp extra, s3:// with the aws extra, hdfs://) reads like a local one; a
local folder is read without importing Beam.
The ledger is a DuckDB view (`run.sql("SELECT ... FROM ledger")`, curate.ledger), which reads
only the columns a query names, in bounded memory; `parts=` reads an evenly spread subset.
"""
from __future__ import annotations

import json
import os
from functools import cached_property
from typing import Iterable, Iterator

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import UsageError
from curate.io import files as fs
from curate.io.curated_urls import URLS_DIR
from curate.io.ledger_parts import LEDGER_DIR, spread  # noqa: F401  (spread: re-exported)
from curate.io.run_schema import CORE_TYPES
from curate.io.run_stats import STATS_FILE
from curate.ledger.connection import add_ledger_view, connect
from curate.ledger.expression import quote_name
from curate.io.shard_format import IMAGE_COLUMNS, SHARDS_DIR


class RunOutput:
    """One run's output folder. `parts` limits the ledger to that many parts, evenly spread."""

    def __init__(self, path: str, parts: int | None = None):
        self.path = str(path).rstrip("/")
        self.parts = parts
        self._connection = None
        if not fs.exists(fs.join(self.path, STATS_FILE)) and not self.ledger_files_all:
            raise UsageError(f"{self.path}: no stats.json and no ledger/ here; is it a curate output folder?")

    # -- files -------------------------------------------------------------------------------
    def _list(self, folder: str, suffixes: tuple[str, ...]) -> list[str]:
        directory = fs.join(self.path, folder)
        if "://" not in directory and not fs.is_dir(directory):
            return []
        return [p for p in fs.list_dir(directory, suffixes) if fs.TMP_MARK not in p]

    @cached_property
    def ledger_files_all(self) -> list[str]:
        return self._list(LEDGER_DIR, (".parquet",))

    @property
    def ledger_files(self) -> list[str]:
        return spread(self.ledger_files_all, self.parts)

    @property
    def sampled(self) -> bool:
        return len(self.ledger_files) < len(self.ledger_files_all)

    @cached_property
    def stats(self) -> dict:
        """stats.json ({} while a run is still going or when it failed before writing it)."""
        path = fs.join(self.path, STATS_FILE)
        return json.loads(fs.read_bytes(path)) if fs.exists(path) else {}

    def shard_files(self) -> pd.DataFrame:
        """Every file under shards/ with its size in bytes."""
        folder = fs.join(self.path, SHARDS_DIR)
        if "://" in folder:
            found = [(m.path, m.size_in_bytes) for m in fs.FileSystems.match([fs.join(folder, "*")])[0].metadata_list]
        else:
            names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
            found = [(p, os.path.getsize(p)) for p in (os.path.join(folder, n) for n in names) if os.path.isfile(p)]
        rows = sorted((path.replace("\\", "/").rsplit("/", 1)[-1], size) for path, size in found
                      if fs.TMP_MARK not in path)
        return pd.DataFrame(rows, columns=["file", "bytes"])

    def shard_sidecar_stats(self) -> list[dict]:
        """The `<shard>_stats.json` files, read from disk (the truth even if stats.json is stale)."""
        return [json.loads(fs.read_bytes(p)) for p in self._list(SHARDS_DIR, ("_stats.json",))]

    # -- tables ------------------------------------------------------------------------------
    @cached_property
    def ledger_schema(self) -> pa.Schema:
        files = self.ledger_files_all
        if not files:
            return pa.schema([])
        with fs.open_read(files[0]) as f:
            return pq.read_schema(f)

    @property
    def ledger_columns(self) -> list[str]:
        return list(self.ledger_schema.names)

    def iter_ledger_tables(self, columns: Iterable[str] | None = None) -> Iterator[pa.Table]:
        """One Arrow table per ledger part, with the asked columns that exist."""
        yield from iter_parquet(self.ledger_files, self._existing(columns))

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the view `ledger` over this run's (sampled) ledger parts."""
        if self._connection is None:
            self._connection = connect()
            add_ledger_view(self._connection, self.ledger_files)
        return self._connection

    def sql(self, query: str, params=None) -> duckdb.DuckDBPyRelation:
        """A DuckDB relation of a query over the view `ledger`: `.df()`, `.fetchall()`, `.show()`."""
        return self.connection.sql(query, params=params)

    def ledger(self, columns: Iterable[str] | None = None, status: str | None = None) -> pd.DataFrame:
        """The (sampled) ledger as one DataFrame; `status='kept'` keeps only kept rows."""
        present = self.ledger_columns or list(CORE_TYPES)
        wanted = present if columns is None else [c for c in dict.fromkeys(columns) if c in present]
        select = ", ".join(quote_name(c) for c in wanted) or "NULL AS none"
        where = "" if status is None else " WHERE status = $status"
        frame = self.sql(f"SELECT {select} FROM ledger{where}", None if status is None else {"status": status}).df()
        return frame[wanted]

    def shard_table(self, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """The kept samples' rows from the shard Parquet sidecars (no image bytes)."""
        files = self._list(SHARDS_DIR, (".parquet",))
        names = []
        if files:
            with fs.open_read(files[0]) as f:
                names = pq.read_schema(f).names
        wanted = [c for c in (columns or names) if c in names and c not in IMAGE_COLUMNS]
        frames = [t.to_pandas() for t in iter_parquet(files, wanted)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=wanted)

    def curated_urls(self) -> pd.DataFrame:
        frames = [t.to_pandas() for t in iter_parquet(self._list(URLS_DIR, (".parquet",)), None)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def _existing(self, columns: Iterable[str] | None) -> list[str] | None:
        if columns is None:
            return None
        present = set(self.ledger_columns)
        return [c for c in dict.fromkeys(columns) if c in present]


def iter_parquet(paths: list[str], columns: list[str] | None) -> Iterator[pa.Table]:
    for path in paths:
        with fs.open_read(path) as f:
            yield pq.read_table(f, columns=columns)


def default_output(pipeline: str = "metaclip", start: str | None = None) -> str:
    """`curate-out/<pipeline>` of the README's first command, found from here or a parent folder
    (a notebook's kernel starts in `notebooks/`, the command ran in the repository root)."""

    here = os.path.abspath(start or os.getcwd())
    tried = []
    while True:
        candidate = os.path.join(here, "curate-out", pipeline)
        tried.append(candidate)
        if os.path.exists(os.path.join(candidate, STATS_FILE)) or os.path.isdir(os.path.join(candidate, LEDGER_DIR)):
            return candidate
        parent = os.path.dirname(here)
        if parent == here or len(tried) == 3:  # the folder, its parent and grandparent: no further
            raise UsageError(f"no curate-out/{pipeline} in {tried[0]} or its parents: run "
                             f"`python -m curate.run --pipeline {pipeline}` first, or set OUTPUT")
        here = parent


def open_run(path: str, parts: int | None = None) -> RunOutput:
    return RunOutput(path, parts)
