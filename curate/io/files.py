"""File helpers over Beam's FileSystems, so local paths, gs:// and s3:// behave alike.

Beam is imported on first use, not with this module (its import takes about two seconds): a tool
that only lists, reads and writes local files, such as `python -m curate.subset`, never pays it.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import IO, Iterator

from braceexpand import braceexpand

TMP_MARK = ".tmp-"


class _LazyFileSystems:
    """Beam's FileSystems, imported when an attribute is first asked for."""

    def __getattr__(self, name):
        from apache_beam.io.filesystems import FileSystems as beam_filesystems

        return getattr(beam_filesystems, name)


FileSystems = _LazyFileSystems()


def join(*parts: str) -> str:
    return FileSystems.join(*parts) if "://" in parts[0] else os.path.join(*parts)


def expand_pattern(pattern: str) -> list[str]:
    """Brace patterns ({00000..00009}) and globs to the sorted list of existing files."""
    paths: list[str] = []
    for one in braceexpand(pattern):
        if any(c in one for c in "*?["):
            paths.extend(m.path for m in FileSystems.match([one])[0].metadata_list)
        elif FileSystems.exists(one):
            paths.append(one)
    return sorted(set(paths))


def is_dir(path: str) -> bool:
    if "://" in path:
        return not FileSystems.exists(path) and bool(list_dir(path))
    return os.path.isdir(path)


def list_dir(path: str, suffixes: tuple[str, ...] = ()) -> list[str]:
    """Files directly or recursively under a folder whose name ends with one of `suffixes`."""
    pattern = join(path, "**") if "://" in path else None
    if pattern:
        found = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    else:
        found = [os.path.join(root, f) for root, _, files in os.walk(path) for f in files]
    return sorted(f for f in found if not suffixes or f.lower().endswith(suffixes))


def exists(path: str) -> bool:
    return FileSystems.exists(path) if "://" in path else os.path.exists(path)


def open_read(path: str) -> IO[bytes]:
    """A file opened for reading, as written (no decompression by extension)."""
    return FileSystems.open(path, compression_type="uncompressed") if "://" in path else open(path, "rb")


def read_bytes(path: str) -> bytes:
    with (FileSystems.open(path) if "://" in path else open(path, "rb")) as f:
        return f.read()


def makedirs(path: str) -> None:
    if "://" not in path:
        os.makedirs(path, exist_ok=True)


@contextmanager
def atomic_write(path: str) -> Iterator[IO[bytes]]:
    """Write to a temporary name beside `path` and rename when complete.

    A reader (or a rerun) never sees a partial file: either the old one or the whole new one.
    """
    tmp = f"{path}{TMP_MARK}{uuid.uuid4().hex[:12]}"
    makedirs(os.path.dirname(path) if "://" not in path else path)
    stream = FileSystems.create(tmp) if "://" in path else open(tmp, "wb")
    try:
        yield stream
        stream.close()
    except BaseException:
        stream.close()
        if "://" in path:
            FileSystems.delete([tmp])
        else:
            os.remove(tmp)
        raise
    if "://" in path:
        if FileSystems.exists(path):
            FileSystems.delete([path])
        FileSystems.rename([tmp], [path])
    else:
        os.replace(tmp, path)  # atomic on POSIX, also over an existing file


def write_bytes(path: str, data: bytes) -> None:
    with atomic_write(path) as f:
        f.write(data)
