"""After a successful run: remove what an earlier run into the same folder left behind.

Shards, ledger parts and URL parts not listed in this run's stats.json, and temporary files of
interrupted writes, so a rerun never leaves duplicates beside fresh output.
"""
from __future__ import annotations

import os

from apache_beam.io.filesystems import FileSystems

from curate.io import files as fs
from curate.io.curated_urls import URLS_DIR
from curate.io.ledger import LEDGER_DIR
from curate.io.shard_format import SHARDS_DIR, SIZES_FILE


def expected_files(stats: dict) -> dict[str, set[str]]:
    shards = {SIZES_FILE} if stats["shards"] else set()
    for shard in stats["shards"]:
        shards.update({shard["file"], f"{shard['shard']}.parquet", f"{shard['shard']}_stats.json"})
    expected = {
        SHARDS_DIR: shards,
        LEDGER_DIR: {f"part-{p}.parquet" for p in stats["ledger_parts"]},
        URLS_DIR: {f"part-{p}.parquet" for p in stats["curated_url_parts"]},
    }
    for facts in stats.get("stages", {}).values():  # a stage's own folders, e.g. embeddings/clip
        for folder, names in (facts or {}).get("files", {}).items():
            expected.setdefault(folder, set()).update(names)
    return expected


def remove_stale(output: str, stats: dict) -> list[str]:
    removed = []
    for folder, keep in expected_files(stats).items():
        directory = fs.join(output, folder)
        if "://" not in directory and not os.path.isdir(directory):
            continue
        for path in fs.list_dir(directory):
            if os.path.basename(path) not in keep:
                FileSystems.delete([path])
                removed.append(path)
    return removed
