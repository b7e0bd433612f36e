"""Read only what the input holds: files inside the input folder, regular, within the byte cap.

A path an input names (a pairs table's file column, a symlink in an image or shard folder) is
resolved before anything is opened. One that leaves the input folder is never opened
(`input:outside_input`: curating someone else's folder must never read the curator's files);
one that is not a regular file is never opened (`input:not_a_file`: a FIFO blocks its reader
forever, /dev/zero never ends); one larger than the cap is never read (`input:too_large`).
The same rules hold for every source, so a path means the same thing whichever reader meets it.
"""
from __future__ import annotations

import os
import stat

OUTSIDE = "input:outside_input"
NOT_A_FILE = "input:not_a_file"
TOO_LARGE = "input:too_large"
REFUSALS = (OUTSIDE, NOT_A_FILE, TOO_LARGE)  # what a file can be that makes its sample unreadable

DEFAULT_MAX_BYTES = 32 * 2**20  # --max_image_bytes: the cap of every image, downloaded or read

# never follow a last-moment symlink, never block on a FIFO swapped in after the check
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | \
    getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def real_root(folder: str | None) -> str | None:
    """The folder a source's paths must stay in, resolved once (None: no folder to stay in)."""
    return None if folder is None or "://" in folder else os.path.realpath(folder)


def is_inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _resolve(path: str, root: str | None, max_bytes: int | None = None) -> tuple[str | None, str | None]:
    """(the real path, None), or (None, why it must not be opened); (None, None): no such file."""
    try:
        real = os.path.realpath(path)
        if root is not None and not is_inside(real, root):
            return None, OUTSIDE
        info = os.stat(real)
    except (OSError, ValueError):  # ValueError: a name with a NUL byte
        return None, None
    if not stat.S_ISREG(info.st_mode):
        return None, NOT_A_FILE
    return (None, TOO_LARGE) if max_bytes is not None and info.st_size > max_bytes else (real, None)


def refusal(path: str, root: str | None = None) -> str | None:
    """Why a local input file must not be opened (outside `root`, or not a regular file); None
    when it may be, or when it is missing (its reader says so) or remote."""
    if "://" in path:
        return None
    return _resolve(path, root)[1]


def read_file(path: str, max_bytes: int, root: str | None = None) -> tuple[bytes | None, str | None]:
    """A file's bytes, or (None, the refusal); (None, None) when there is no such file.

    The size is checked before the file is opened and the read stops one byte past the cap, so
    memory is bounded by `max_bytes` whatever the file grows to.
    """
    real, why = _resolve(path, root, max_bytes)
    if real is None:
        return None, why
    try:
        fd = os.open(real, _OPEN_FLAGS)
    except OSError:
        return None, None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped since it was resolved
            return None, NOT_A_FILE
        if info.st_size > max_bytes:
            return None, TOO_LARGE
        data = f.read(max_bytes + 1)
    return (None, TOO_LARGE) if len(data) > max_bytes else (data, None)
