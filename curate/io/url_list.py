"""URL lists (Parquet, CSV, TSV, JSONL) with img2dataset's column conventions.

Captions arrive by the billion here, so a Parquet list whose url and caption columns are strings
and whose other columns are flat is read column by column, a block of rows per task (one large
file is read by many workers), with exactly the rules of `make_sample`: no Python object per row
but the strings the matcher reads. Any other list goes through the row reader.
"""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from curate.errors import UsageError
from curate import ledger_layout  # its part size is read when a list is planned (tests change it)
from curate.io.safe_paths import real_root, refusal
from curate.io.source import Row, Source, Task, make_sample, refused_file
from curate.io.row_files import (BAD_FILE, BAD_LINE, READ_ERRORS, clean_fields, iter_numbered_rows, probe_columns,
                                 resolve_column, table_format)
from curate.io.utf8 import clean_text, escape_paths
from curate.sample import Sample, SampleBatch, make_uid
from curate.ledger_layout import batch_id, extra_column

URL_FALLBACKS = ("url",)
CAPTION_FALLBACKS = ("caption", "text")


class UrlListSource(Source):
    kind = "url list"
    needs_download = True

    def __init__(self, files: list[str], url_col: str = "url", caption_col: str = "caption",
                 explicit_cols: tuple[bool, bool] = (False, False), root: str | None = None):
        files, self._raw_paths = escape_paths(files)
        super().__init__(files)
        self.within = real_root(root)  # lists found in a folder must stay in it
        why = refusal(self.raw_path(files[0]), self.within)
        if why:  # the run takes its columns from the first file
            raise UsageError(f"--input: {files[0]} is not read ({why}): the first list must be a regular file")
        fmts = {table_format(f) for f in files}
        if None in fmts or len(fmts) != 1:
            raise UsageError(f"--input: URL lists must all be one of Parquet, CSV, TSV, JSONL: {files[:3]}")
        self.fmt = fmts.pop()
        columns = probe_columns(self._raw_paths.get(files[0], files[0]), self.fmt)
        names = list(columns)
        self.url_col = resolve_column(names, url_col, URL_FALLBACKS, "--url_col", explicit_cols[0], files[0])
        self.caption_col = resolve_column(names, caption_col, CAPTION_FALLBACKS, "--caption_col",
                                          explicit_cols[1], files[0])
        self._extras = {n: t for n, t in columns.items() if n not in (self.url_col, self.caption_col)}

    def extra_columns(self) -> dict[str, pa.DataType]:
        return {extra_column(n): t for n, t in self._extras.items()}

    def raw_path(self, path: str) -> str:
        """The file one of `files` names (they are escaped to valid UTF-8)."""
        return self._raw_paths.get(path, path)

    def read(self, path: str) -> Iterator[Row]:
        why = refusal(self.raw_path(path), self.within)
        if why:  # a FIFO would block the reader; a symlink out of the folder is not the input
            yield refused_file(path, why)
            return
        for line, row in iter_numbered_rows(self.raw_path(path), self.fmt):
            if BAD_LINE in row or BAD_FILE in row:
                yield bad_row(path, line, row)
                continue
            extras = clean_fields({k: v for k, v in row.items() if k not in (self.url_col, self.caption_col)})
            yield keyed_by_line(make_sample(url=row.get(self.url_col), caption=row.get(self.caption_col),
                                            source_key=None, identity=f"{path}:{line}", extras=extras,
                                            require_url=True), path, line)

    def tasks(self, index: int, path: str, batch_size: int) -> Iterator[Task]:
        """Each block of a column-wise Parquet list on its own (consecutive batches of one ledger
        part), any other file whole."""
        total = self._columnar_rows(path)
        if total is None:
            yield index, path, None
            return
        for first_row, rows in block_bounds(batch_size):
            if first_row >= total:
                return
            yield index, path, (first_row, rows)

    def read_batches(self, task: Task, batch_size: int):
        index, path, span = task
        if span is None:
            yield from super().read_batches(task, batch_size)
            return
        first_row, rows = span
        try:
            table = _parquet_rows(self.raw_path(path), first_row, rows)
        except READ_ERRORS as e:  # a block that cannot be read is one row, as the row reader gives
            sample, reason = bad_row(path, first_row + 1, {BAD_FILE: f"{type(e).__name__}: {e}"[:300]})
            yield SampleBatch(batch_id(index, first_row), [sample]), [reason]
            return
        for start in range(0, table.num_rows, batch_size):
            yield self._columns_batch(batch_id(index, first_row + start), table.slice(start, batch_size), path,
                                      first_row + start)

    def _columns_batch(self, id: str, table: pa.Table, path: str, first_row: int) -> tuple[SampleBatch, list]:
        """make_sample's rules (a URL list: a url is required) on whole columns; the input's
        other columns stay Arrow arrays. A row without a URL is keyed by its file and row number
        (keyed_by_line), as the row reader keys it."""
        urls = [u if u is not None and u.strip() else None for u in table.column(self.url_col).to_pylist()]
        captions = table.column(self.caption_col).to_pylist()
        reasons = ["input:missing_caption" if c is None else "input:empty_caption" if not c.strip()
                   else "input:missing_url" if u is None else None for u, c in zip(urls, captions)]
        keys = [None if u is not None else f"{path}:{first_row + i + 1}" for i, u in enumerate(urls)]
        extras = {name: table.column(name).combine_chunks() for name in table.column_names
                  if name not in (self.url_col, self.caption_col)}
        uids = list(map(make_uid, urls, captions)) if None not in urls else [
            make_uid(u or k, c) for u, k, c in zip(urls, keys, captions)]
        core = {"uid": uids, "url": urls, "caption": captions, "source_key": keys if None in urls else None}
        return SampleBatch.from_columns(id, table.num_rows, core, extras), reasons

    def _columnar_rows(self, path: str) -> int | None:
        """The row count of a Parquet list that can be read column-wise (string url and caption,
        flat other columns); None for any other list."""
        if self.fmt != "parquet" or refusal(self.raw_path(path), self.within):
            return None  # the row reader reads it, or records why it does not (safe_paths)
        try:
            with FileSystems.open(self.raw_path(path)) as f:
                metadata = pq.ParquetFile(f).metadata
        except READ_ERRORS:
            return None  # cut or corrupt: the row reader records it (input:bad_file)
        schema = metadata.schema.to_arrow_schema()
        text = (pa.types.is_string(schema.field(self.url_col).type)
                and pa.types.is_string(schema.field(self.caption_col).type))
        return metadata.num_rows if text and not any(_nested(f.type) for f in schema) else None

    def describe(self) -> str:
        return f"URL list ({self.fmt}, url={self.url_col!r}, caption={self.caption_col!r}): {len(self.files)} file(s)"


def keyed_by_line(row: Row, path: str, line: int) -> Row:
    """A row without a URL or a file is keyed by its table file and line (its uid comes from them
    too: from its caption alone, it would be shared by every such row with that caption)."""
    if row[0].url is None and row[0].source_key is None:
        row[0].source_key = f"{path}:{line}"
    return row


def bad_row(path: str, line: int, row: dict) -> Row:
    """A line that is not a row (`input:bad_row`, keyed by its file and line number), or the
    end of a file that cannot be read on (`input:bad_file`, with the error)."""
    if BAD_FILE in row:
        key = f"{path}:<unreadable from row {line}>"
        return Sample(uid=make_uid(key, None), source_key=key,
                      extras={"error": clean_text(row[BAD_FILE])}), "input:bad_file"
    key = f"{path}:{line}"
    return Sample(uid=make_uid(key, None), source_key=key,
                  extras={"raw_line": clean_text(row[BAD_LINE][:1000])}), "input:bad_row"


def block_bounds(batch_size: int) -> Iterator[tuple[int, int]]:
    """(first row, rows) of each block: consecutive batches whose first rows share a ledger part."""
    part_rows = ledger_layout.ROWS_PER_LEDGER_PART
    start = 0
    while True:
        end = start + batch_size
        while end // part_rows == start // part_rows:
            end += batch_size
        yield start, end - start
        start = end


def _nested(type_: pa.DataType) -> bool:
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return _nested(type_.value_type)
    return pa.types.is_struct(type_) or pa.types.is_map(type_) or pa.types.is_dictionary(type_)


def _parquet_rows(path: str, first_row: int, rows: int) -> pa.Table:
    """Rows [first_row, first_row + rows) of a Parquet file, reading only the row groups they span."""
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
