"""Hostile files for the input tests: tars no ordinary writer makes, special files, and a watch
on every file a run opens (shared by test_hostile_inputs_2.py, test_hostile_lists.py and test_hostile_property.py)."""
from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import stat
import sys
import tarfile

import pytest

from tests.test_hostile_inputs import photo

CAP = 400_000  # --max_image_bytes in these runs: every photo of the sample is smaller

# --- helpers: files the run must not open, tars no ordinary writer makes ------------------------

_opened: list[str] | None = None
_hooked = False


def _audit(event: str, args) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], (str, bytes)):
        _opened.append(os.path.realpath(os.fsdecode(args[0])))


@contextlib.contextmanager
def watching_opens():
    """The real paths of every file Python opens in the block (the readers run in this process);
    a watchdog ends the process if a read blocks (a FIFO opened for reading waits forever)."""
    global _opened, _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # cannot be removed: a no-op outside this block
        _hooked = True
    _opened = []
    faulthandler.dump_traceback_later(300, exit=True)
    try:
        yield _opened
    finally:
        faulthandler.cancel_dump_traceback_later()
        _opened = None


def member(name: str, data: bytes = b"", type_: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    """One tar member as GNU tar writes it (any type, any link target)."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = type_, link
    info.size = len(data) if type_ in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") + data + b"\0" * (-len(data) % 512)


def sparse_member(name: str, declared: int, stored: bytes) -> bytes:
    """A GNU sparse member (type S): `stored` bytes at the end of a `declared`-byte file of zeros.
    Python's tarfile reads such members (expanding the holes) but cannot write them."""
    buf = bytearray(member(name, stored)[:512])
    buf[156:157] = tarfile.GNUTYPE_SPARSE
    buf[386:398] = tarfile.itn(declared - len(stored), 12, tarfile.GNU_FORMAT)  # one region: offset
    buf[398:410] = tarfile.itn(len(stored), 12, tarfile.GNU_FORMAT)  # and length stored
    buf[483:495] = tarfile.itn(declared, 12, tarfile.GNU_FORMAT)  # the size it expands to
    buf[148:156] = b"%06o\0 " % tarfile.calc_chksums(bytes(buf))[0]
    return bytes(buf) + stored + b"\0" * (-len(stored) % 512)


def tar_of(*members: bytes) -> bytes:
    return b"".join(members) + b"\0" * 1024  # the end-of-archive marker


def strict_json(data: bytes):
    """json.loads that refuses NaN and Infinity (Python accepts them; strict readers do not)."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(data, parse_constant=refuse)


def shard_jsons(out) -> list[dict]:
    import webdataset as wds

    folder = os.path.join(str(out), "shards")
    return [strict_json(s["json"]) for name in sorted(os.listdir(folder)) if name.endswith(".tar")
            for s in wds.WebDataset(os.path.join(folder, name), shardshuffle=False)]


def fifo(path) -> None:
    os.mkfifo(path)


def socket_file(path) -> bool:
    try:
        os.mknod(path, stat.S_IFSOCK | 0o600)
        return True
    except (OSError, AttributeError):
        return False


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """A folder beside the input: the curator's own files, which no run may read."""
    root = tmp_path_factory.mktemp("curator")
    (root / "secret.jpg").write_bytes(photo(20))
    (root / "notes.txt").write_bytes(b"my bank password")
    return root
