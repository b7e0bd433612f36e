"""WebDataset tar shards as input: ours, img2dataset's, or any other WebDataset writer's.

Members are grouped by WebDataset's key rule (the path up to the first dot of the file name);
the image, the `.txt` caption and the `.json` fields of a key make one sample. JSON fields and
the original key are carried into the ledger and the output json.
"""
from __future__ import annotations

import itertools
import os
import tarfile
from typing import Iterator

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from curate.io.source import Row, Source, make_sample
from curate.io.table import arrow_type_of
from curate.io.tables import json_fields
from curate.sample import extra_column

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
CAPTION_EXTS = ("txt", "text", "caption")
_PROBE_SAMPLES = 50


def split_key(member_name: str) -> tuple[str, str]:
    directory, name = os.path.split(member_name)
    stem, _, ext = name.partition(".")
    return (os.path.join(directory, stem) if directory else stem), ext.lower()


def iter_tar_groups(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) for each sample in a tar, streaming."""
    with FileSystems.open(path) as f, tarfile.open(fileobj=f, mode="r|*") as tar:
        key, group = None, {}
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
        if group:
            yield key, group


class TarShardSource(Source):
    kind = "WebDataset shards"

    def __init__(self, files: list[str]):
        super().__init__(files)
        self._extras = self._probe_json(files[0])

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
        return columns

    def read(self, path: str) -> Iterator[Row]:
        shard = os.path.basename(path)
        try:
            for key, group in iter_tar_groups(path):
                yield self._sample(shard, key, group)
        except (tarfile.TarError, OSError, EOFError) as e:
            # a truncated or corrupt tar keeps the samples read so far and says where it broke
            yield make_sample(url=None, caption=None, source_key=f"{shard}:<unreadable>",
                              extras={"source_shard": shard, "error": str(e)[:200]})[0], "input:bad_tar"

    def _sample(self, shard: str, key: str, group: dict[str, bytes]) -> Row:
        fields = json_fields(group.get("json"))
        extras = {k: v for k, v in fields.items() if k not in ("url", "caption")}
        extras["source_shard"] = shard
        caption = next((group[e] for e in CAPTION_EXTS if e in group), fields.get("caption"))
        image_ext = next((e for e in IMAGE_EXTS if e in group), None)
        sample, reason = make_sample(url=fields.get("url"), caption=caption,
                                     source_key=key, identity=f"{shard}/{key}",
                                     extras=extras, image=group.get(image_ext) if image_ext else None)
        if reason is None and image_ext is None:
            reason = "input:missing_image"
        return sample, reason
