"""A local folder of images with captions (the bundled sample's form).

Two layouts: a table at the top (pairs.jsonl / .parquet / .csv / .tsv) whose rows name an
image file relative to the folder (rows with only a URL are curated as text); or images with
a same-named `.txt` caption (and optional `.json` fields), as img2dataset's `files` output.
Every file is read through safe_paths: nothing outside the folder, only regular files, capped.
"""
from __future__ import annotations

import os
from typing import Iterator

import pyarrow as pa

from curate.errors import UsageError
from curate.io import files as fs
from curate.io.safe_paths import REFUSALS, read_file, real_root, refusal
from curate.io.source import Row, Source, make_sample, refused_file, url_text
from curate.io.row_files import (BAD_FILE, BAD_LINE, clean_fields, iter_numbered_rows, json_fields, probe_columns,
                              resolve_column, table_format)
from curate.io.url_list import bad_row, keyed_by_line
from curate.io.utf8 import RAW_NAME, escape_name, escape_paths, name_bytes_hex
from curate.ledger_layout import extra_column

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
FILE_FALLBACKS = ("image", "path", "filepath", "image_path")


class ImageFolderSource(Source):
    kind = "image folder"

    def __init__(self, root: str, url_col: str = "url", caption_col: str = "caption",
                 explicit_cols: tuple[bool, bool] = (False, False)):
        self.root = root
        self.within = real_root(root)  # resolved once: every file read must stay in it
        tables = [os.path.join(root, f) for f in sorted(os.listdir(root))
                  if table_format(f) and not _is_real_dir(os.path.join(root, f))]
        if tables:
            self._init_table(tables, url_col, caption_col, explicit_cols)
        else:
            self.table_fmt = None
            dirs = sorted({os.path.dirname(p) for p in fs.list_dir(root, IMAGE_SUFFIXES)})
            if not dirs:
                raise UsageError(f"--input: no images and no pairs table in folder {root}")
            dirs, self._raw_paths = escape_paths(dirs)
            super().__init__(dirs)
            self._extras = {RAW_NAME: pa.string()}

    def _init_table(self, tables, url_col, caption_col, explicit_cols):
        tables, self._raw_paths = escape_paths(tables)
        super().__init__(tables)
        self.table_fmt = table_format(tables[0])
        # the columns of the first table that may be read (the others are a ledger row each)
        first = next((t for t in tables if self._readable(self._raw_paths.get(t, t))), None)
        if first is None:
            why = refusal(self._raw_paths.get(tables[0], tables[0]), self.within)
            raise UsageError(f"--input: the pairs table {tables[0]} is not read ({why}): it is not a "
                             "regular file inside the folder")
        columns = probe_columns(self._raw_paths.get(first, first), self.table_fmt)
        names = list(columns)
        self.file_col = resolve_column(names, "file", FILE_FALLBACKS, "image file column", False, first)
        self.caption_col = resolve_column(names, caption_col, ("caption", "text"), "--caption_col",
                                          explicit_cols[1], first)
        try:
            self.url_col = resolve_column(names, url_col, ("url",), "--url_col", explicit_cols[0], first)
        except UsageError:
            if explicit_cols[0]:
                raise
            self.url_col = None  # a folder needs no URLs
        used = {self.file_col, self.caption_col, self.url_col}
        self._extras = {n: t for n, t in columns.items() if n not in used}
        self._extras.setdefault(RAW_NAME, pa.string())
        self.needs_download = self.url_col is not None

    def _readable(self, table: str) -> bool:
        return refusal(table, self.within) is None and os.path.isfile(table)

    def extra_columns(self) -> dict[str, pa.DataType]:
        return {extra_column(n): t for n, t in self._extras.items()}

    def read(self, path: str) -> Iterator[Row]:
        raw = self._raw_paths.get(path, path)
        if self.table_fmt:
            why = refusal(raw, self.within)
            yield from [refused_file(path, why)] if why else self._read_table(path, raw)
        else:
            yield from self._read_dir(raw)

    def _read_table(self, path: str, raw: str) -> Iterator[Row]:
        for line, row in iter_numbered_rows(raw, self.table_fmt):
            if BAD_LINE in row or BAD_FILE in row:
                yield bad_row(path, line, row)
                continue
            rel = row.get(self.file_col)
            rel = url_text(rel) if rel is not None and not isinstance(rel, str) else rel  # 7 names "7"
            rel = rel or None
            url = row.get(self.url_col) if self.url_col else None
            extras = clean_fields({k: v for k, v in row.items()
                                   if k not in (self.file_col, self.caption_col, self.url_col)})
            image, problem, key = None, None, None
            if rel:
                image, problem = self._read_image(os.path.join(self.root, rel))
                key = _keyed(rel, extras)
            elif not url:
                problem = "input:missing_image"
            sample, reason = keyed_by_line(make_sample(url=url, caption=row.get(self.caption_col), source_key=key,
                                                       identity=rel or f"{path}:{line}", extras=extras,
                                                       image=image), path, line)
            yield sample, _reason(reason, problem)

    def _read_dir(self, path: str) -> Iterator[Row]:
        names = sorted(os.listdir(path))
        for name in names:
            stem, ext = os.path.splitext(name)
            if ext.lower() not in IMAGE_SUFFIXES:
                continue
            image, problem = self._read_image(os.path.join(path, name))
            caption, caption_problem = self._read(os.path.join(path, stem + ".txt"))
            meta, meta_problem = self._read(os.path.join(path, stem + ".json"))
            problem = next((p for p in (problem, caption_problem, meta_problem) if p in REFUSALS), problem)
            extras = json_fields(meta)
            url = extras.pop("url", None)
            if caption is None and "caption" in extras:
                caption = extras.pop("caption")
            rel = os.path.relpath(os.path.join(path, name), self.root)
            # the uid from the name as read (two names escaping alike stay two samples)
            sample, reason = make_sample(url=url, caption=caption, source_key=_keyed(rel, extras),
                                         identity=rel, extras=extras, image=image)
            yield sample, _reason(reason, problem)

    def _read(self, path: str) -> tuple[bytes | None, str | None]:
        """A file of the folder, or why it is not read (None, None: there is none)."""
        return read_file(path, self.max_bytes, self.within)

    def _read_image(self, path: str) -> tuple[bytes | None, str | None]:
        data, why = self._read(path)
        return data, why or (None if data is not None else "input:missing_image")

    def describe(self) -> str:
        layout = f"table {os.path.basename(self.files[0])}" if self.table_fmt else "images + .txt captions"
        return f"image folder {escape_name(self.root)} ({layout})"


def _keyed(name: str, extras: dict) -> str:
    """A file name as its source_key, valid UTF-8; the raw bytes of one that is not, in extras."""
    raw = name_bytes_hex(name)
    if raw is not None:
        extras[RAW_NAME] = raw
    return escape_name(name)


def _reason(reason: str | None, problem: str | None) -> str | None:
    """A file that was not read (outside the folder, not a regular file, too large) is the
    sample's reason before any caption problem; a missing image comes after one."""
    return problem if problem in REFUSALS else reason or problem


def _is_real_dir(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)
