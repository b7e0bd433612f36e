"""Turn `--input` into a Source: URL lists, image folders, WebDataset shards."""
from __future__ import annotations

import os

from curate.errors import UsageError
from curate.flags import one_of
from curate.io import files as fs
from curate.io.image_folder import ImageFolderSource
from curate.io.source import Source
from curate.io.row_files import table_format
from curate.io.safe_paths import DEFAULT_MAX_BYTES
from curate.io.webdataset_source import TarShardSource
from curate.io.url_list import UrlListSource

INPUT_FORMATS = ("auto", "urls", "folder", "webdataset")


def bundled_sample() -> str:
    return os.path.join(os.path.dirname(__file__), "data", "sample")


def bundled_worldwide_sample() -> str:
    """The multilingual URL list the metaclip2 recipe reads by default (curated as text)."""
    return os.path.join(os.path.dirname(__file__), "data", "sample_worldwide", "pairs.jsonl")


def is_bundled_sample(path: str) -> bool:
    """A bundled sample, however it is named (it stays offline unless --download says so)."""
    real = os.path.realpath(path.rstrip("/"))
    return real in (os.path.realpath(bundled_sample()), os.path.realpath(bundled_worldwide_sample()))


def open_source(path: str | None, input_format: str = "auto", url_col: str = "url",
                caption_col: str = "caption", explicit_cols: tuple[bool, bool] = (False, False),
                max_bytes: int = DEFAULT_MAX_BYTES) -> Source:
    """The Source for an input path, glob or brace pattern; UsageError when nothing is there.
    No image larger than `max_bytes` (--max_image_bytes) is read."""
    if max_bytes < 1:
        raise UsageError(f"--max_image_bytes: must be >= 1, got {max_bytes}")
    source = _source_for(path or bundled_sample(), input_format, url_col, caption_col, explicit_cols)
    source.max_bytes = max_bytes
    return source


def _source_for(path: str, input_format: str, url_col: str, caption_col: str,
                explicit_cols: tuple[bool, bool]) -> Source:
    cols = dict(url_col=url_col, caption_col=caption_col, explicit_cols=explicit_cols)
    one_of("--input_format", input_format, INPUT_FORMATS)
    if fs.is_dir(path):
        tars = fs.list_dir(path, (".tar",))
        if input_format == "webdataset" or (input_format == "auto" and tars):
            if not tars:
                raise UsageError(f"--input: no .tar shards in folder {path}")
            return TarShardSource(tars, root=path)
        if input_format == "urls":
            tables = [f for f in fs.list_dir(path) if table_format(f)]
            if not tables:
                raise UsageError(f"--input: no URL list files in folder {path}")
            return UrlListSource(tables, root=path, **cols)
        if "://" in path:
            raise UsageError("--input: image folders must be local; use WebDataset shards on remote storage")
        return ImageFolderSource(path, **cols)
    files = fs.expand_pattern(path)
    if not files:
        raise UsageError(f"--input: no such file or folder: {path}")
    unreadable = [f for f in files if "://" not in f and not os.access(f, os.R_OK)]
    if unreadable:
        raise UsageError(f"--input: cannot read {unreadable[0]}")
    if input_format == "webdataset" or (input_format == "auto" and all(f.endswith(".tar") for f in files)):
        return TarShardSource(files)
    if input_format in ("auto", "urls"):
        return UrlListSource(files, **cols)
    raise UsageError(f"--input: {path} is not a folder; --input_format folder needs one")
