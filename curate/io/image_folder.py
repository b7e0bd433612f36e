"""A local folder of images with captions (the bundled sample's form).

Two layouts: a table at the top (pairs.jsonl / .parquet / .csv / .tsv) whose rows name an
image file relative to the folder (rows with only a URL are curated as text); or images with
a same-named `.txt` caption (and optional `.json` fields), as img2dataset's `files` output.
"""
from __future__ import annotations

import os
from typing import Iterator

import pyarrow as pa

from curate.errors import UsageError
from curate.io import files as fs
from curate.io.source import Row, Source, make_sample
from curate.io.tables import flat_value, iter_rows, json_fields, probe_columns, resolve_column, table_format
from curate.sample import extra_column

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
FILE_FALLBACKS = ("image", "path", "filepath", "image_path")


class ImageFolderSource(Source):
    kind = "image folder"

    def __init__(self, root: str, url_col: str = "url", caption_col: str = "caption",
                 explicit_cols: tuple[bool, bool] = (False, False)):
        self.root = root
        tables = [os.path.join(root, f) for f in sorted(os.listdir(root))
                  if table_format(f) and os.path.isfile(os.path.join(root, f))]
        if tables:
            self._init_table(tables, url_col, caption_col, explicit_cols)
        else:
            self.table_fmt = None
            dirs = sorted({os.path.dirname(p) for p in fs.list_dir(root, IMAGE_SUFFIXES)})
            if not dirs:
                raise UsageError(f"--input: no images and no pairs table in folder {root}")
            super().__init__(dirs)
            self._extras = {}

    def _init_table(self, tables, url_col, caption_col, explicit_cols):
        super().__init__(tables)
        self.table_fmt = table_format(tables[0])
        columns = probe_columns(tables[0], self.table_fmt)
        names = list(columns)
        self.file_col = resolve_column(names, "file", FILE_FALLBACKS, "image file column", False, tables[0])
        self.caption_col = resolve_column(names, caption_col, ("caption", "text"), "--caption_col",
                                          explicit_cols[1], tables[0])
        try:
            self.url_col = resolve_column(names, url_col, ("url",), "--url_col", explicit_cols[0], tables[0])
        except UsageError:
            if explicit_cols[0]:
                raise
            self.url_col = None  # a folder needs no URLs
        used = {self.file_col, self.caption_col, self.url_col}
        self._extras = {n: t for n, t in columns.items() if n not in used}
        self.needs_download = self.url_col is not None

    def extra_columns(self) -> dict[str, pa.DataType]:
        return {extra_column(n): t for n, t in self._extras.items()}

    def read(self, path: str) -> Iterator[Row]:
        yield from (self._read_table(path) if self.table_fmt else self._read_dir(path))

    def _read_table(self, path: str) -> Iterator[Row]:
        for row in iter_rows(path, self.table_fmt):
            rel = row.get(self.file_col)
            url = row.get(self.url_col) if self.url_col else None
            extras = {k: flat_value(v) for k, v in row.items()
                      if k not in (self.file_col, self.caption_col, self.url_col)}
            image, problem = None, None
            if rel:
                image, problem = _read_image(os.path.join(self.root, rel))
            elif not url:
                problem = "input:missing_image"
            sample, reason = make_sample(url=url, caption=row.get(self.caption_col),
                                         source_key=rel, extras=extras, image=image)
            yield sample, reason or problem

    def _read_dir(self, path: str) -> Iterator[Row]:
        names = sorted(os.listdir(path))
        for name in names:
            stem, ext = os.path.splitext(name)
            if ext.lower() not in IMAGE_SUFFIXES:
                continue
            image, problem = _read_image(os.path.join(path, name))
            caption = _read_optional(os.path.join(path, stem + ".txt"))
            meta = _read_optional(os.path.join(path, stem + ".json"))
            extras = json_fields(meta)
            url = extras.pop("url", None)
            if caption is None and "caption" in extras:
                caption = extras.pop("caption")
            rel = os.path.relpath(os.path.join(path, name), self.root)
            sample, reason = make_sample(url=url, caption=caption, source_key=rel, extras=extras, image=image)
            yield sample, reason or problem

    def describe(self) -> str:
        layout = f"table {os.path.basename(self.files[0])}" if self.table_fmt else "images + .txt captions"
        return f"image folder {self.root} ({layout})"


def _read_image(path: str) -> tuple[bytes | None, str | None]:
    try:
        with open(path, "rb") as f:
            return f.read(), None
    except OSError:
        return None, "input:missing_image"


def _read_optional(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None
