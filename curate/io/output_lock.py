"""One run at a time per output folder: a second run into a busy `--output` is refused.

Two runs into one folder would park, assemble and delete each other's `_spill/` files. The
first run holds an exclusive `flock` on `<output>/.curate-lock` for as long as it runs; a
second one fails to take it and stops with one line (exit 2) naming the holder's pid, host and
start time, before any work. The kernel drops the lock when its process ends however it ends
(crash, kill -9, out of memory), so a lock never outlives its run: a rerun after a crash finds
the file, takes the lock and resumes. The file is removed when the run ends.

Outputs on object stores (gs://, s3://) have no lock: they have no flock, and the run's own
writes are atomic renames there.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from typing import Iterator

from curate.errors import UsageError

LOCK_FILE = ".curate-lock"


def lock_path(output: str) -> str:
    return os.path.join(output, LOCK_FILE)


@contextmanager
def output_lock(output: str) -> Iterator[None]:
    """Hold the output folder for the duration of the block (created if needed, and removed
    again if this run created it and left it empty)."""
    if "://" in output:
        yield
        return
    created = not os.path.exists(output)
    os.makedirs(output, exist_ok=True)
    fd = _take(lock_path(output), output)
    try:
        yield
    finally:
        try:
            os.unlink(lock_path(output))  # while still held: a run that opened this file retries
        except FileNotFoundError:
            pass
        os.close(fd)
        if created:
            try:
                os.rmdir(output)
            except OSError:
                pass  # it holds the run's outputs


def _take(path: str, output: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by a live run
            holder = _read(fd)
            os.close(fd)
            raise UsageError(f"--output {output} is in use by another run ({holder}); wait for it to "
                             "finish or choose another --output") from None
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder removed the file as it finished: take the new one
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}).encode())
    return fd


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _read(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its lock file is being written"
