"""DuckDB connections over a run's ledger: a view `ledger`, bounded memory, optionally locked.

Settings, and why:
- `memory_limit` (default MEMORY_LIMIT, 1 GB): DuckDB's own default is 80 % of the machine's
  memory, too much beside a notebook or a pipeline worker. Aggregations larger than the limit
  (counting a billion distinct sha256 for duplicate clusters, sorting the selected uids) spill
  to disk instead, so a query's memory does not grow with the ledger.
- `temp_directory`: a fresh folder under the system's temporary directory, created by DuckDB
  only when it spills and removed when the connection closes. DuckDB's default is `.tmp` in the
  current working directory, which would drop spill files into a user's repository.
- `threads`: DuckDB's default (one per core) unless given.

`lock_to_ledger` is for expressions a user passes as flags (`--where`, `--keep`): after the view
exists, nothing but the ledger's parts can be read (`allowed_paths`), external access is off
(no other file, no COPY/ATTACH, no extension installed or loaded) and the configuration cannot
be changed back. A NaN in a float column reads as NULL in the view (a failed model score is
unknown, never "greater than everything", which is how DuckDB orders NaN).
"""
from __future__ import annotations

import math
import os
import tempfile
import uuid

import duckdb

from curate.ledger.expression import quote_name, quote_text

MEMORY_LIMIT = "1GB"
VIEW = "ledger"
_FLOATS = ("FLOAT", "DOUBLE", "REAL")


def connect(threads: int | None = None, memory_limit: str = MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with bounded memory and a private spill folder."""
    spill = os.path.join(tempfile.gettempdir(), f"curate-duckdb-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    config = {"memory_limit": memory_limit, "temp_directory": spill}
    if threads:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    try:
        con.execute("SET enable_progress_bar = false")  # DuckDB draws one on a terminal; our tools print their own
    except duckdb.InvalidInputException:  # in Jupyter without ipywidgets DuckDB refuses to touch it, and draws none
        pass
    # DuckDB takes a Parquet part's float min/max to mean "no NaN" and folds isnan() to false (a NaN
    # score would then compare as greater than every number); without this pass it reads the values
    con.execute("SET disabled_optimizers = 'statistics_propagation'")
    return con


def file_list(paths: list[str]) -> str:
    return "[" + ", ".join(quote_text(p) for p in paths) + "]"


def add_ledger_view(con: duckdb.DuckDBPyConnection, files: list[str], empty_schema=None, name: str = VIEW) -> None:
    """`name` = the parts as one table, float NaN read as NULL. No parts: an empty table of
    `empty_schema` (a pyarrow schema), so queries still bind."""
    if not files:
        con.register(name, (empty_schema if empty_schema is not None else _core_schema()).empty_table())
        return
    if any("://" in f for f in files):
        from curate.ledger.remote import register_schemes

        register_schemes(con, files)
    source = f"read_parquet({file_list(files)})"
    columns = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    floats = [c for c, kind, *_ in columns if kind in _FLOATS]
    # isnan, not nullif(x, 'NaN'): DuckDB finds a NaN read from Parquet unequal to the NaN literal
    replace = ", ".join(f"CASE WHEN isnan({quote_name(c)}) THEN NULL ELSE {quote_name(c)} END AS {quote_name(c)}"
                        for c in floats)
    select = f"SELECT * REPLACE ({replace})" if floats else "SELECT *"
    con.execute(f"CREATE VIEW {quote_name(name)} AS {select} FROM {source}")


def lock_to_ledger(con: duckdb.DuckDBPyConnection, files: list[str]) -> None:
    """From now on the connection reads the ledger's parts and nothing else, for good."""
    if files:
        con.execute(f"SET allowed_paths = {file_list(files)}")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET lock_configuration = true")


def column_range(con: duckdb.DuckDBPyConnection, files: list[str], column: str, kind: str) -> tuple | None:
    """(min, max) of a numeric column over the parts, from their Parquet statistics (no pass over
    the rows; NaN is not in them), or None when a part has no exact statistics for it."""
    if not files or any("://" in f for f in files):  # a remote footer read per part: not worth it
        return None
    groups, exact, low, high = con.execute(
        f"SELECT count(*), count_if(coalesce(min_is_exact AND max_is_exact, false) AND stats_min_value IS NOT NULL "
        f"AND stats_max_value IS NOT NULL), min(TRY_CAST(stats_min_value AS {kind})::DOUBLE), "
        f"max(TRY_CAST(stats_max_value AS {kind})::DOUBLE) FROM parquet_metadata({file_list(files)}) "
        "WHERE path_in_schema = $1", [column]).fetchall()[0]
    usable = groups and groups == exact and low is not None and high is not None
    return (low, high) if usable and math.isfinite(low) and math.isfinite(high) else None


def _core_schema():
    import pyarrow as pa

    from curate.io.run_schema import CORE_TYPES

    return pa.schema(list(CORE_TYPES.items()))


def open_ledger(path: str, parts: int | None = None, threads: int | None = None,
                memory_limit: str = MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the view `ledger` over a run's ledger parts.

    `path`: a run's output folder, its `ledger/` folder, a Parquet file or a glob; local, or any
    scheme Beam reads (gs://, s3://). `parts`: only that many parts, evenly spread (a quick look
    at a huge run). Query it in SQL: `con.sql("SELECT reason, count(*) FROM ledger GROUP BY ALL").df()`.
    """
    from curate.io.ledger_parts import ledger_parts, spread

    files = spread(ledger_parts(path), parts)
    con = connect(threads, memory_limit)
    add_ledger_view(con, files)
    return con
