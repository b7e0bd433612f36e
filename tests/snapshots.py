"""Stored expectations: a run's ledger parts, curated URL parts and stats.json as plain JSON.

The text-only MetaCLIP runs of `tests/test_one_graph.py` are compared with what the code before
the one-graph redesign (commit d0ad439, whose two graphs were checked equal file for file, with the input
fixes of issue 23 on top: commit 64d9a86, where rows without a URL are keyed by file and line) wrote
for the same inputs: `python tests/expected/generate.py --checkout DIR` writes them again from a
checkout (a `git worktree add DIR 64d9a86` with its own `pip install -e`).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import os

import pyarrow.parquet as pq

EXPECTED = os.path.join(os.path.dirname(__file__), "expected")
VOLATILE_STATS = ("output", "wall_time_s", "source")  # paths and times


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def snapshot(out) -> dict:
    """Every ledger and curated URL part (schema and rows, in file order), the sha256 of every
    shard file, and stats.json."""
    files = {}
    for folder in ("ledger", "curated_urls"):
        directory = os.path.join(out, folder)
        for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
            table = pq.read_table(os.path.join(directory, name))
            files[f"{folder}/{name}"] = {"schema": [f"{f.name}: {f.type}" for f in table.schema],
                                         "rows": _plain(table.to_pylist())}
    shards = os.path.join(out, "shards")
    for name in sorted(os.listdir(shards)) if os.path.isdir(shards) else []:
        with open(os.path.join(shards, name), "rb") as f:
            files[f"shards/{name}"] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(out, "stats.json")) as f:
        stats = json.load(f)
    for key in VOLATILE_STATS:
        stats.pop(key, None)
    return {"files": files, "stats": _plain(stats)}


def expected(name: str) -> dict:
    with gzip.open(os.path.join(EXPECTED, f"{name}.json.gz"), "rt", encoding="utf-8") as f:
        return json.load(f)


def store(name: str, snap: dict) -> None:
    os.makedirs(EXPECTED, exist_ok=True)
    with gzip.GzipFile(os.path.join(EXPECTED, f"{name}.json.gz"), "wb", mtime=0) as raw:
        raw.write(json.dumps(snap, ensure_ascii=False, sort_keys=True, indent=0).encode("utf-8"))
