"""URL lists (Parquet, CSV, TSV, JSONL) with img2dataset's column conventions."""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa

from curate.errors import UsageError
from curate.io.safe_paths import real_root, refusal
from curate.io.source import Row, Source, make_sample, refused_file
from curate.io.row_files import (BAD_FILE, BAD_LINE, clean_fields, iter_numbered_rows, probe_columns, resolve_column,
                               table_format)
from curate.io.utf8 import clean_text, escape_paths
from curate.sample import Sample, extra_column, make_uid

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
