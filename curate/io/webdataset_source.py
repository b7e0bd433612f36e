"""WebDataset tar shards as input: ours, img2dataset's, or any other WebDataset writer's.

Members are grouped by WebDataset's key rule (the path up to the first dot of the file name);
the image, the `.txt` caption and the `.json` fields of a key make one sample. JSON fields and
the original key are carried into the ledger and the output json.
"""
from __future__ import annotations

import itertools
import os
import tarfile
import zlib
from typing import Iterator

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from curate.io.source import Row, Source, make_sample
from curate.io.run_schema import arrow_type_of
from curate.io.row_files import json_fields
from curate.io.utf8 import RAW_NAME, clean_text, escape_name, escape_paths, name_bytes_hex
from curate.sample import extra_column

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
CAPTION_EXTS = ("txt", "text", "caption")
_PROBE_SAMPLES = 50


def split_key(member_name: str) -> tuple[str, str]:
    directory, name = os.path.split(member_name)
    stem, _, ext = name.partition(".")
    return (os.path.join(directory, stem) if directory else stem), ext.lower()


class BadTar(tarfile.ReadError):
    """A tar that ends before its end-of-archive marker or breaks; `offset`: where, in bytes."""

    def __init__(self, offset: int, message: str):
        super().__init__(message)
        self.offset = offset


class _HeaderWatch(tarfile.TarInfo):
    """Records why the last header read failed: tarfile ends the archive silently at an empty,
    partial or invalid header, which is also where a cut tar ends."""

    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except tarfile.HeaderError as e:
            tar.curate_end = e
            raise


def iter_tar_groups(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) for each sample in a tar, streaming.

    Raises BadTar after the last whole sample when the tar is cut or corrupt, the end-of-archive
    marker (two zero blocks) missing included: a tar cut at a member boundary loses data too.
    """
    with FileSystems.open(path) as f, tarfile.open(fileobj=f, mode="r|*", tarinfo=_HeaderWatch) as tar:
        key, group, error = None, {}, None
        try:
            for member in tar:
                if not member.isfile():
                    continue
                member_key, ext = split_key(member.name)
                if member_key.startswith("__") or not ext:
                    continue
                if member_key != key and group:
                    yield key, group
                    group = {}
                key = member_key
                group[ext] = tar.extractfile(member).read()
            _check_end(tar)
        except BadTar as e:
            error = e
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            error = BadTar(tar.offset, str(e)[:200] or type(e).__name__)
        if group:  # its members were read whole: the sample goes on (a missing part is its reason)
            yield key, group
        if error is not None:
            raise error


def _check_end(tar: tarfile.TarFile) -> None:
    end = getattr(tar, "curate_end", None)
    if isinstance(end, tarfile.EOFHeaderError):  # one zero block read: the second must follow
        if tar.fileobj.read(tarfile.BLOCKSIZE) == tarfile.NUL * tarfile.BLOCKSIZE:
            return
        raise BadTar(tar.offset, f"end-of-archive marker incomplete at byte {tar.offset}")
    what = {tarfile.EmptyHeaderError: "end-of-archive marker missing",
            tarfile.TruncatedHeaderError: "cut inside a header",
            tarfile.InvalidHeaderError: "invalid header"}.get(type(end), "unreadable header")
    raise BadTar(tar.offset, f"{what} at byte {tar.offset}")


class TarShardSource(Source):
    kind = "WebDataset shards"

    def __init__(self, files: list[str]):
        files, self._raw_paths = escape_paths(files)
        super().__init__(files)
        self._extras = self._probe_json(self._raw_paths.get(files[0], files[0]))

    @staticmethod
    def _probe_json(path: str) -> dict[str, pa.DataType]:
        try:
            groups = list(itertools.islice(iter_tar_groups(path), _PROBE_SAMPLES))
        except (tarfile.TarError, OSError):
            return {}
        fields = [json_fields(g.get("json")) for _, g in groups]
        names = dict.fromkeys(n for f in fields for n in f if n not in ("url", "caption"))
        return {n: arrow_type_of(f.get(n) for f in fields) for n in names}

    def extra_columns(self) -> dict[str, pa.DataType]:
        columns = {extra_column(n): t for n, t in self._extras.items()}
        columns["source_shard"] = pa.string()
        columns[RAW_NAME] = pa.string()
        return columns

    def read(self, path: str) -> Iterator[Row]:
        shard = os.path.basename(path)
        try:
            for key, group in iter_tar_groups(self._raw_paths.get(path, path)):
                yield self._sample(shard, key, group)
        except BadTar as e:
            # a truncated or corrupt tar keeps the samples read so far and says where it broke
            yield make_sample(url=None, caption=None, source_key=f"{shard}:<unreadable at byte {e.offset}>",
                              extras={"source_shard": shard, "tar_offset": e.offset,
                                      "error": clean_text(str(e))})[0], "input:bad_tar"

    def _sample(self, shard: str, key: str, group: dict[str, bytes]) -> Row:
        fields = json_fields(group.get("json"))
        extras = {k: v for k, v in fields.items() if k not in ("url", "caption")}
        extras["source_shard"] = shard
        raw = name_bytes_hex(key)
        if raw is not None:  # a member name that is not UTF-8: key escaped, its bytes kept
            extras[RAW_NAME] = raw
        caption = next((group[e] for e in CAPTION_EXTS if e in group), fields.get("caption"))
        image_ext = next((e for e in IMAGE_EXTS if e in group), None)
        sample, reason = make_sample(url=fields.get("url"), caption=caption,
                                     source_key=escape_name(key), identity=f"{shard}/{key}",
                                     extras=extras, image=group.get(image_ext) if image_ext else None)
        if reason is None and image_ext is None:
            reason = "input:missing_image"
        return sample, reason
