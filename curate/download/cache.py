"""Per-batch download results under `OUTPUT/downloads/<batch id>.parquet`: what a rerun keeps.

Each batch's outcomes (images included) are written atomically as soon as the batch is done,
so a run killed at any moment leaves whole files only. A rerun into the same output reads the
file first: successes and permanent failures are reused, transient failures are fetched again.
A file written under other outcome-deciding flags (resize, limits, opt-outs) is ignored.
"""
from __future__ import annotations

import logging
import os
from dataclasses import fields

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from curate.download.outcome import Outcome
from curate.io import files as fs

CACHE_DIR = "downloads"
FORMAT_VERSION = 2  # bump when the columns change: older files are then ignored
_FINGERPRINT = b"curate.download.fingerprint"
_TYPES = {
    "uid": pa.string(), "detail": pa.string(), "transient": pa.bool_(), "http_status": pa.int32(),
    "download_bytes": pa.int64(), "attempts": pa.int32(), "elapsed_s": pa.float64(),
    "final_url": pa.string(), "error": pa.string(), "image": pa.binary(), "width": pa.int32(),
    "height": pa.int32(), "image_format": pa.string(), "sha256": pa.string(),
    "original_width": pa.int32(), "original_height": pa.int32(), "block_list": pa.string(),
    "block_distance": pa.int32(), "pdq": pa.string(), "pdq_quality": pa.int32(), "tdm_policy": pa.string(),
}
_COLUMNS = [f.name for f in fields(Outcome) if f.name != "from_cache"]
assert list(_TYPES) == _COLUMNS
log = logging.getLogger(__name__)


class BatchCache:
    def __init__(self, output: str, fingerprint: str):
        self.folder = fs.join(output, CACHE_DIR)
        self.fingerprint = f"{FORMAT_VERSION}:{fingerprint}".encode()

    def path(self, batch_id: str) -> str:
        return fs.join(self.folder, f"{batch_id}.parquet")

    def read(self, batch_id: str) -> dict[str, Outcome]:
        """uid -> outcome of an earlier run; empty when there is none (or it cannot be used)."""
        path = self.path(batch_id)
        if not FileSystems.exists(path):
            return {}
        try:
            with FileSystems.open(path) as f:
                table = pq.read_table(f)
            if (table.schema.metadata or {}).get(_FINGERPRINT) != self.fingerprint:
                return {}  # made under other flags (or by another version): not reused
            return {row["uid"]: Outcome(**row, from_cache=True) for row in table.to_pylist()}
        except Exception as e:  # noqa: BLE001  (a damaged file costs a re-download, not the run)
            log.warning("download cache %s unreadable (%s): fetching again", path, e)
            return {}

    def write(self, batch_id: str, outcomes: list[Outcome]) -> None:
        columns = {name: [getattr(o, name) for o in outcomes] for name in _COLUMNS}
        table = pa.table({n: pa.array(v, type=_TYPES[n]) for n, v in columns.items()})
        table = table.replace_schema_metadata({_FINGERPRINT: self.fingerprint})
        with fs.atomic_write(self.path(batch_id)) as f:
            pq.write_table(table, f, compression="none")  # images are compressed already


def remove_partial_files(output: str) -> None:
    """Temporary files a killed run left in the cache folder (complete files stay)."""
    folder = fs.join(output, CACHE_DIR)
    if "://" not in folder and not os.path.isdir(folder):
        return
    partial = [p for p in fs.list_dir(folder) if fs.TMP_MARK in os.path.basename(p)]
    if partial:
        FileSystems.delete(partial)
