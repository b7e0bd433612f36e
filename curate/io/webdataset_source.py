"""WebDataset tar shards as input: ours, img2dataset's, or any other WebDataset writer's.

Members are grouped by WebDataset's key rule (the path up to the first dot of the file name);
the image, the `.txt` caption and the `.json` fields of a key make one sample. JSON fields and
the original key are carried into the ledger and the output json. Every key is one ledger row:
one whose member is a link, not a regular file, past --max_image_bytes or there twice is
dropped with that reason, never silently skipped (WebDataset's own reader skips or refuses them).
"""
from __future__ import annotations

import functools
import itertools
import os
import tarfile
import zlib
from typing import Iterator, NamedTuple

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from curate.io.safe_paths import DEFAULT_MAX_BYTES, NOT_A_FILE, TOO_LARGE, real_root, refusal
from curate.io.source import Row, Source, make_sample, refused_file
from curate.io.run_schema import arrow_type_of
from curate.io.row_files import json_fields
from curate.io.utf8 import RAW_NAME, clean_text, escape_name, escape_paths, name_bytes_hex
from curate.ledger_layout import extra_column

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
CAPTION_EXTS = ("txt", "text", "caption")
SAMPLE_EXTS = frozenset((*IMAGE_EXTS, *CAPTION_EXTS, "json"))  # the members a sample is made of
LINK_MEMBER = "input:link_member"
DUPLICATE_MEMBER = "input:duplicate_member"
_PROBE_SAMPLES = 50
# tarfile's ValueError: a PAX sparse map that is not numbers
_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, ValueError)
_HEADER_DATA_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                      tarfile.SOLARIS_XHDTYPE)


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
    partial or invalid header, which is also where a cut tar ends. Refuses a header whose own
    data (a long name, pax records) is larger than the cap: tarfile reads that into memory."""

    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except tarfile.HeaderError as e:
            tar.curate_end = e
            raise

    max_bytes: int | None = None

    def _proc_member(self, tar):
        if self.max_bytes is not None and self.type in _HEADER_DATA_TYPES and self.size > self.max_bytes:
            raise tarfile.SubsequentHeaderError(f"a {self.size}-byte header record at byte {self.offset} "
                                                f"(cap {self.max_bytes})")
        return super()._proc_member(tar)


@functools.lru_cache(maxsize=None)
def _capped_headers(max_bytes: int) -> type:
    """_HeaderWatch with a cap: tarfile reads the first header as it opens, so the cap rides
    on the class it builds headers with."""
    return type("_CappedHeaderWatch", (_HeaderWatch,), {"max_bytes": max_bytes})


class TarKey(NamedTuple):
    """One key of a tar: the members a sample is made of, read whole, and those that are not read."""

    key: str
    parts: dict[str, bytes]  # extension -> bytes (images, captions, json; other members are not read)
    refused: dict[str, str]  # extension -> why it is not read (a link, not a regular file, past the cap)
    twice: list[str]  # extensions found twice under the key (WebDataset refuses such a shard)


def iter_tar_keys(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[TarKey]:
    """Every key of a tar (consecutive members sharing a key), streaming; no member or header
    larger than `max_bytes` is read (a sparse member's size is the size it expands to).

    Raises BadTar after the last whole key when the tar is empty, not a tar, cut or corrupt, the
    end-of-archive marker (two zero blocks) missing included: a tar cut at a member boundary
    loses data too.
    """
    with FileSystems.open(path) as f:
        try:
            tar = tarfile.open(fileobj=f, mode="r|*", tarinfo=_capped_headers(max_bytes))
        except _TAR_ERRORS as e:  # an empty file (a worker died before writing), not a tar
            raise BadTar(0, str(e)[:200] or type(e).__name__) from None
        with tar:
            # a key is a sample once one of its members is whole: read, or passed over up to the
            # next header (`skipped`: the last member was not read; a cut in it ends the tar)
            current, seen, whole, skipped, error = None, set(), False, False, None
            try:
                for member in tar:
                    whole, skipped = whole or skipped, False
                    if member.isdir():
                        continue  # structure, no sample
                    key, ext = split_key(member.name)
                    if current is None or key != current.key:
                        if whole:
                            yield current
                        current, seen, whole = TarKey(key, {}, {}, []), set(), False
                    if ext in seen:
                        current.twice.append(ext)
                        current.parts.pop(ext, None)  # neither copy is the sample's
                    elif ext in SAMPLE_EXTS:
                        data = _member_bytes(tar, member, max_bytes)
                        (current.parts if isinstance(data, bytes) else current.refused)[ext] = data
                        whole = whole or isinstance(data, bytes)
                    seen.add(ext)
                    skipped = ext not in current.parts
                whole = whole or skipped  # the next header was reached: the data before it is whole
                _check_end(tar)
            except BadTar as e:
                error = e
            except _TAR_ERRORS as e:
                error = BadTar(tar.offset, str(e)[:200] or type(e).__name__)
        if whole:  # the sample goes on (a missing part is its reason)
            yield current
        if error is not None:
            raise error


def iter_tar_groups(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) for each key of a tar: its members read whole (iter_tar_keys)."""
    for found in iter_tar_keys(path, max_bytes):
        yield found.key, found.parts


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo, max_bytes: int) -> bytes | str:
    """A member's bytes, or why they are not read: links are never followed (a stream cannot go
    back to their target, and a symlink may name any file), the size is checked before reading."""
    if member.islnk() or member.issym():
        return LINK_MEMBER
    if not member.isfile():
        return NOT_A_FILE
    if member.size > max_bytes:
        return TOO_LARGE
    return tar.extractfile(member).read()


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

    def __init__(self, files: list[str], root: str | None = None):
        files, self._raw_paths = escape_paths(files)
        super().__init__(files)
        self.within = real_root(root)  # shards listed from a folder must stay in it
        self._extras = self._probe_json(self._raw_paths.get(files[0], files[0]))

    def _probe_json(self, path: str) -> dict[str, pa.DataType]:
        if refusal(path, self.within):
            return {}
        try:
            groups = list(itertools.islice(iter_tar_groups(path, self.max_bytes), _PROBE_SAMPLES))
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
        raw = self._raw_paths.get(path, path)
        why = refusal(raw, self.within)
        if why:  # a FIFO would block the reader; a symlink out of the folder is not the input
            yield refused_file(shard, why, {"source_shard": shard})
            return
        try:
            for found in iter_tar_keys(raw, self.max_bytes):
                yield self._sample(shard, found)
        except BadTar as e:
            # a truncated or corrupt tar keeps the samples read so far and says where it broke
            yield make_sample(url=None, caption=None, source_key=f"{shard}:<unreadable at byte {e.offset}>",
                              extras={"source_shard": shard, "tar_offset": e.offset,
                                      "error": clean_text(str(e))})[0], "input:bad_tar"

    def _sample(self, shard: str, found: TarKey) -> Row:
        key, parts = found.key, found.parts
        fields = json_fields(parts.get("json"))
        extras = {k: v for k, v in fields.items() if k not in ("url", "caption")}
        extras["source_shard"] = shard
        raw = name_bytes_hex(key)
        if raw is not None:  # a member name that is not UTF-8: key escaped, its bytes kept
            extras[RAW_NAME] = raw
        image_ext, caption_ext = (next((e for e in exts if e in parts or e in found.refused), None)
                                  for exts in (IMAGE_EXTS, CAPTION_EXTS))
        caption = parts.get(caption_ext) if caption_ext else fields.get("caption")
        sample, reason = make_sample(url=fields.get("url"), caption=caption,
                                     source_key=escape_name(key), identity=f"{shard}/{key}",
                                     extras=extras, image=parts.get(image_ext) if image_ext else None)
        if found.twice:
            return sample, DUPLICATE_MEMBER
        refused = next((found.refused[e] for e in (image_ext, caption_ext, "json") if e in found.refused), None)
        if refused:
            return sample, refused
        if reason is None and image_ext is None:
            reason = "input:missing_image"
        return sample, reason
