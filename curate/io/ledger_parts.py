"""Where a run's ledger is and which files are its parts, without Beam or Arrow.

The ledger is `ledger/part-*.parquet` under a run's output; the SQL tools (`curate.subset`,
`curate.ledger`) list it here so that a local re-cut starts in a fraction of a second. Remote
paths (gs://, s3://) are listed through Beam's FileSystems, imported only for them.
"""
from __future__ import annotations

import glob
import os

from braceexpand import braceexpand

from curate.errors import UsageError
from curate.io.files import TMP_MARK  # a part still being written

LEDGER_DIR = "ledger"


def spread(items: list, n: int | None) -> list:
    """n items evenly spaced over the list (all when n is None or too big): a fair sample of parts."""
    if n is None or n >= len(items):
        return list(items)
    if n <= 0:
        return []
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _is_dir(path: str) -> bool:
    if "://" in path:
        from curate.io import files as fs

        return fs.is_dir(path)
    return os.path.isdir(path)


def _parquet_under(folder: str) -> list[str]:
    if "://" in folder:
        from curate.io import files as fs

        found = fs.list_dir(folder, (".parquet",))
    else:
        found = sorted(os.path.join(root, f) for root, _, files in os.walk(folder) for f in files
                       if f.lower().endswith(".parquet"))
    return [f for f in found if TMP_MARK not in f.replace("\\", "/").rsplit("/", 1)[-1]]


def _matching(pattern: str) -> list[str]:
    if "://" in pattern:
        from curate.io import files as fs

        return fs.expand_pattern(pattern)
    found = []
    for one in braceexpand(pattern):
        found.extend(glob.glob(one) if any(c in one for c in "*?[") else [one] if os.path.isfile(one) else [])
    return sorted(set(found))


def ledger_parts(path: str) -> list[str]:
    """The ledger parts of a run folder, a ledger folder, a Parquet file or a glob of them
    (UsageError, one line, when there are none)."""
    if _is_dir(path):
        inner = path.rstrip("/") + "/" + LEDGER_DIR if "://" in path else os.path.join(path, LEDGER_DIR)
        files = _parquet_under(inner if _is_dir(inner) else path)
        if not files:
            raise UsageError(f"ledger: no ledger parts (*.parquet) under {path}")
        return files
    files = _matching(path)
    if not files:
        raise UsageError(f"ledger: no such run folder or ledger file: {path}")
    return files
