"""A URL list read column-wise: ledger-shaped Arrow batches of one ledger part each.

The text-only path reads captions by the million; building a Sample per row costs more than
matching it. Parquet lists whose url and caption columns are strings and whose other columns
are flat are converted column by column, with exactly the rules of `make_sample` (source.py);
any other list goes through the source's own row reader and `samples_to_batch`, so both give
the same ledger rows.
"""
from __future__ import annotations

import itertools
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from curate.io.ledger_batch import samples_to_batch
from curate.io.row_files import BAD_FILE, READ_ERRORS
from curate.io.safe_paths import refusal
from curate.io.url_list import UrlListSource, bad_row
from curate import sample
from curate.sample import CORE_COLUMNS, batch_id, extra_column, make_uid

PartRows = tuple[str, pa.RecordBatch]  # (batch id of the part's first row, its ledger rows)
Task = tuple[int, str, "tuple[int, int] | None"]  # (file index, path, (first row, rows) or whole file)
_NULL_CORE = [c for c in CORE_COLUMNS if c in ("width", "height", "image_format", "sha256")]


def plan_blocks(source: UrlListSource, index: int, path: str, batch_size: int) -> Iterator[Task]:
    """The read tasks of one file: each block of a column-wise Parquet list on its own (so one
    large file is read and matched by many workers), any other file whole."""
    total = _columnar_rows(source, path)
    if total is None:
        yield index, path, None
        return
    for first_row, rows in block_bounds(batch_size):
        if first_row >= total:
            return
        yield index, path, (first_row, rows)


def read_task(source: UrlListSource, task: Task, batch_size: int) -> Iterator[PartRows]:
    """The blocks of one task, each with the batch id of its first row (see `block_bounds`)."""
    index, path, span = task
    if span is not None:
        yield batch_id(index, span[0]), _parquet_block(source, path, *span)
        return
    pairs = source.read(path)
    for first_row, rows in block_bounds(batch_size):
        block = list(itertools.islice(pairs, rows))
        if not block:
            return
        samples, reasons = zip(*block)
        yield batch_id(index, first_row), samples_to_batch(list(samples), list(reasons))


def block_bounds(batch_size: int) -> Iterator[tuple[int, int]]:
    """(first row, rows) of each block: consecutive batches whose first rows share a ledger part."""
    part_rows = sample.ROWS_PER_LEDGER_PART
    start = 0
    while True:
        end = start + batch_size
        while end // part_rows == start // part_rows:
            end += batch_size
        yield start, end - start
        start = end


def _columnar_rows(source: UrlListSource, path: str) -> int | None:
    """The row count of a Parquet list that can be read column-wise (string url and caption,
    flat other columns); None for any other list."""
    if source.fmt != "parquet" or refusal(source.raw_path(path), source.within):
        return None  # the row reader reads it, or records why it does not (safe_paths)
    try:
        with FileSystems.open(source.raw_path(path)) as f:
            metadata = pq.ParquetFile(f).metadata
    except READ_ERRORS:
        return None  # cut or corrupt: the row reader records it (input:bad_file)
    schema = metadata.schema.to_arrow_schema()
    text = (pa.types.is_string(schema.field(source.url_col).type)
            and pa.types.is_string(schema.field(source.caption_col).type))
    return metadata.num_rows if text and not any(_nested(f.type) for f in schema) else None


def _nested(type_: pa.DataType) -> bool:
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return _nested(type_.value_type)
    return pa.types.is_struct(type_) or pa.types.is_map(type_) or pa.types.is_dictionary(type_)


def _parquet_block(source: UrlListSource, path: str, first_row: int, rows: int) -> pa.RecordBatch:
    """Rows [first_row, first_row + rows) of a Parquet file, reading only the row groups they span;
    a block that cannot be read is one `input:bad_file` row, as the row reader gives."""
    try:
        return _ledger_rows(source, _parquet_rows(source.raw_path(path), first_row, rows), path, first_row)
    except READ_ERRORS as e:
        sample, reason = bad_row(path, first_row + 1, {BAD_FILE: f"{type(e).__name__}: {e}"[:300]})
        return samples_to_batch([sample], [reason])


def _parquet_rows(path: str, first_row: int, rows: int) -> pa.Table:
    with FileSystems.open(path) as f:
        parquet = pq.ParquetFile(f)
        groups, start, offset = [], 0, 0
        for g in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(g).num_rows
            if start + size > first_row and start < first_row + rows:
                if not groups:
                    offset = first_row - start
                groups.append(g)
            start += size
        table = parquet.read_row_groups(groups) if groups else parquet.schema_arrow.empty_table()
    return table.slice(offset, rows)


def _ledger_rows(source: UrlListSource, table: pa.Table, path: str, first_row: int) -> pa.RecordBatch:
    """make_sample's rules (url list, require_url) on whole columns; extras kept as Arrow arrays.
    A row without a URL is keyed by its file and row number (url_list.keyed_by_line)."""
    urls = [u if u is not None and u.strip() else None for u in table.column(source.url_col).to_pylist()]
    captions = table.column(source.caption_col).to_pylist()
    reasons = ["input:missing_caption" if c is None else "input:empty_caption" if not c.strip()
               else "input:missing_url" if u is None else None for u, c in zip(urls, captions)]
    keys = [None if u is not None else f"{path}:{first_row + i + 1}" for i, u in enumerate(urls)]
    n = table.num_rows
    columns = {
        "uid": pa.array([make_uid(u or k, c) for u, k, c in zip(urls, keys, captions)], pa.string()),
        "url": pa.array(urls, pa.string()),
        "caption": pa.array(captions, pa.string()),
        "source_key": pa.array(keys, pa.string()),
        **{c: pa.nulls(n) for c in _NULL_CORE},
        "status": pa.array(["kept" if r is None else "dropped" for r in reasons], pa.string()),
        "reason": pa.array(reasons, pa.string()),
    }
    for name in table.column_names:
        if name not in (source.url_col, source.caption_col):
            columns.setdefault(extra_column(name), table.column(name).combine_chunks())
    return pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))
