"""Row tables on disk (Parquet, CSV, TSV, JSONL): their columns, and their rows streamed."""
from __future__ import annotations

import csv
import io
import itertools
import json
from collections import deque
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from curate.errors import UsageError
from curate.io.run_schema import arrow_type_of, to_json
from curate.io.utf8 import clean_text, escape_name

BAD_LINE = "__bad_line__"  # the key of a row that could not be parsed: {BAD_LINE: its first line}
BAD_FILE = "__bad_file__"  # the last row of a file that could not be read on: {BAD_FILE: why}
# what a cut or corrupt file raises (Arrow's errors are ValueErrors; so is bad UTF-8 in Parquet)
READ_ERRORS = (pa.ArrowException, ValueError, OSError, EOFError)

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
        try:
            with FileSystems.open(path) as f:
                schema = pq.read_schema(f)
        except READ_ERRORS as e:
            raise UsageError(f"--input: cannot read {escape_name(path)}: {e}") from None
        return {name: _flat_type(schema.field(name).type) for name in schema.names}
    if fmt in _CSV_SEP:
        with FileSystems.open(path) as f:
            header = next(_csv_records(_text_lines(f), _CSV_SEP[fmt]), None)
        if header is None or header[1] is None:
            raise UsageError(f"--input: {escape_name(path)} line 1: no readable {fmt.upper()} header")
        return {name: pa.string() for name in _header_names(header[1])}
    rows = [r for r in itertools.islice(iter_rows(path, fmt), _PROBE_ROWS)
            if BAD_LINE not in r and BAD_FILE not in r]
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return {n: _flat_type(arrow_type_of(r.get(n) for r in rows)) for n in names}


def _flat_type(type_: pa.DataType) -> pa.DataType:
    nested = pa.types.is_struct(type_) or pa.types.is_map(type_) or pa.types.is_dictionary(type_)
    return pa.string() if nested or pa.types.is_null(type_) else type_


def flat_value(value: Any) -> Any:
    """Nested values (dicts) travel as JSON text, so every column keeps one simple type; text
    anywhere in a value is valid UTF-8 (a JSON `\\ud83d` escape or a stray byte becomes U+FFFD)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return clean_text(to_json(value))
    if isinstance(value, list):
        return [flat_value(v) for v in value]
    return value


def clean_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A row's names and values as flat, valid UTF-8 (for carried columns, not url or caption,
    whose cleaning is a reason: make_sample)."""
    return {clean_text(str(k)): flat_value(v) for k, v in row.items()}


def json_fields(raw: bytes | None) -> dict[str, Any]:
    """A sample's .json sidecar as flat fields; an unreadable one is noted, not fatal."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {"json_error": "unparseable .json"}
    return clean_fields(value) if isinstance(value, dict) else {}


def iter_rows(path: str, fmt: str) -> Iterator[dict[str, Any]]:
    return (row for _, row in iter_numbered_rows(path, fmt))


def iter_numbered_rows(path: str, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for each row, 1-based (the header is line 1; Parquet: row number).

    A line that cannot be a row (a JSONL line that is not an object, a CSV record with an
    unterminated quote or more fields than the header) yields {BAD_LINE: its first line}, and
    reading goes on at the next line: one bad line never costs the rows after it. A file that
    cannot be read on (a cut or corrupt Parquet file) ends with {BAD_FILE: why}.
    """
    number = 0
    try:
        with FileSystems.open(path) as f:
            for number, row in _numbered_rows(f, fmt):
                yield number, row
    except READ_ERRORS as e:
        yield number + 1, {BAD_FILE: f"{type(e).__name__}: {e}"[:300]}


def _numbered_rows(f, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if fmt == "parquet":
        number = 0
        for batch in pq.ParquetFile(f).iter_batches(batch_size=READ_CHUNK):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    elif fmt in _CSV_SEP:
        yield from _csv_rows(_text_lines(f), _CSV_SEP[fmt])
    else:
        for number, line in enumerate(_text_lines(f), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                row = None
            if isinstance(row, dict):  # names as valid UTF-8 here: they become column names
                yield number, {clean_text(str(k)): v for k, v in row.items()}
            else:
                yield number, {BAD_LINE: line.rstrip("\r\n")}


def _text_lines(f) -> io.TextIOWrapper:
    # undecodable bytes kept as surrogates (cleaned per value, reported as non-UTF-8 text);
    # a UTF-8 byte order mark dropped; line ends untouched (CSV quotes may hold them)
    return io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _header_names(fields: list[str]) -> list[str]:
    """Column names as pandas gives them: blank -> `Unnamed: i`, repeats -> `name.1`, `name.2`."""
    names: list[str] = []
    for i, name in enumerate(fields):
        base = clean_text(name) or f"Unnamed: {i}"
        name, k = base, 0
        while name in names:
            k += 1
            name = f"{base}.{k}"
        names.append(name)
    return names


def _csv_rows(lines, sep: str) -> Iterator[tuple[int, dict[str, Any]]]:
    records = _csv_records(lines, sep)
    first = next(records, None)
    if first is None:
        return
    header = _header_names(first[1]) if first[1] is not None else None
    for number, fields, line in records:
        if header is None or fields is None or len(fields) > len(header):
            yield number, {BAD_LINE: line.rstrip("\r\n")}
        else:  # a short row: the missing cells are empty, as a JSONL object without the key
            yield number, {name: (fields[i] or None) if i < len(fields) else None
                           for i, name in enumerate(header)}


class _Lines:
    """Numbered lines for csv.reader, keeping those of the record being read so that a bad
    record's lines after its first can be read again."""

    def __init__(self, lines):
        self.lines = enumerate(lines, 1)
        self.again: deque = deque()
        self.taken: list[tuple[int, str]] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        item = self.again.popleft() if self.again else next(self.lines)
        self.taken.append(item)
        return item[1]


def _csv_records(lines, sep: str) -> Iterator[tuple[int, "list[str] | None", str]]:
    """(first line number, fields or None when malformed, first line) of each non-blank record.

    strict parsing: an unterminated quote fails at the end of the file or at csv's field size
    limit (128 KiB), so at most that much is read twice.
    """
    feed = _Lines(lines)
    reader = csv.reader(feed, delimiter=sep, strict=True)
    while True:
        feed.taken = []
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            if not feed.taken:
                return
            (number, line), *rest = feed.taken
            feed.again.extendleft(reversed(rest))
            reader = csv.reader(feed, delimiter=sep, strict=True)
            yield number, None, line
            continue
        if fields:
            yield feed.taken[0][0], fields, feed.taken[0][1]
