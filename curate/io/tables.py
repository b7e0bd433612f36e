"""Row tables on disk (Parquet, CSV, TSV, JSONL): their columns, and their rows streamed."""
from __future__ import annotations

import io
import itertools
import json
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from curate.errors import UsageError
from curate.io.table import arrow_type_of, to_json

TABLE_FORMATS = {".parquet": "parquet", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
                 ".ndjson": "jsonl", ".json": "jsonl"}
_CSV_SEP = {"csv": ",", "tsv": "\t"}
_PROBE_ROWS = 10_000
READ_CHUNK = 8192


def table_format(path: str) -> str | None:
    lower = path.lower()
    return next((fmt for ext, fmt in TABLE_FORMATS.items() if lower.endswith(ext)), None)


def resolve_column(columns: list[str], wanted: str, fallbacks: tuple[str, ...], flag: str,
                   explicit: bool, path: str) -> str:
    """The table's column for `wanted`: exact, else case-insensitive, else a known fallback."""
    if wanted in columns:
        return wanted
    by_lower = {c.lower(): c for c in columns}
    for name in (wanted, *(() if explicit else fallbacks)):
        if name.lower() in by_lower:
            return by_lower[name.lower()]
    raise UsageError(f"{flag}: no column {wanted!r} in {path} (columns: {', '.join(columns)})")


def probe_columns(path: str, fmt: str) -> dict[str, pa.DataType]:
    """Column names and Arrow types, read from the header or the first rows."""
    if fmt == "parquet":
        with FileSystems.open(path) as f:
            schema = pq.read_schema(f)
        return {name: _flat_type(schema.field(name).type) for name in schema.names}
    if fmt in _CSV_SEP:
        with FileSystems.open(path) as f:
            header = pd.read_csv(f, sep=_CSV_SEP[fmt], nrows=0, encoding_errors="surrogateescape")
        return {str(c): pa.string() for c in header.columns}
    rows = [r for r in itertools.islice(iter_rows(path, fmt), _PROBE_ROWS) if "__bad_line__" not in r]
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return {n: _flat_type(arrow_type_of(r.get(n) for r in rows)) for n in names}


def _flat_type(type_: pa.DataType) -> pa.DataType:
    nested = pa.types.is_struct(type_) or pa.types.is_map(type_) or pa.types.is_dictionary(type_)
    return pa.string() if nested or pa.types.is_null(type_) else type_


def clean_text(value: str) -> str:
    """Text as valid UTF-8: bytes that were not (kept as surrogates on read) become U+FFFD."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def flat_value(value: Any) -> Any:
    """Nested values (dicts) travel as JSON text, so every column keeps one simple type."""
    if isinstance(value, str):
        return clean_text(value)
    return to_json(value) if isinstance(value, dict) else value


def json_fields(raw: bytes | None) -> dict[str, Any]:
    """A sample's .json sidecar as flat fields; an unreadable one is noted, not fatal."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"json_error": "unparseable .json"}
    return {k: flat_value(v) for k, v in value.items()} if isinstance(value, dict) else {}


def iter_rows(path: str, fmt: str) -> Iterator[dict[str, Any]]:
    """Rows as dicts; a JSONL line that is not an object yields {'__bad_line__': text}."""
    if fmt == "parquet":
        with FileSystems.open(path) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=READ_CHUNK):
                yield from batch.to_pylist()
    elif fmt in _CSV_SEP:
        with FileSystems.open(path) as f:
            chunks = pd.read_csv(f, sep=_CSV_SEP[fmt], dtype=str, keep_default_na=False,
                                 chunksize=READ_CHUNK, encoding_errors="surrogateescape")
            for chunk in chunks:
                for row in chunk.to_dict("records"):
                    yield {k: (v if v != "" else None) for k, v in row.items()}
    else:
        with FileSystems.open(path) as f:
            for line in io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape"):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    row = None
                yield row if isinstance(row, dict) else {"__bad_line__": line.rstrip("\n")}
