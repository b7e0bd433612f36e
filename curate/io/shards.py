"""Output shards: WebDataset tars (or img2dataset-style Parquet) with sidecars.

Kept samples are spread over N shards by a hash of their uid (N from the global kept count),
so shard contents depend only on the kept set: the same on any runner and worker count.
Within a shard samples are sorted by uid; tar headers carry no clock, so a rerun writes the
same bytes. Each shard is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import io
import json
import math
import tarfile
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io import files as fs
from curate.io.table import rows_to_table
from curate.sample import Sample, ledger_row

SHARDS_DIR = "shards"
SIZES_FILE = "sizes.json"  # open_clip's training loader reads sample counts from it
IMAGE_COLUMNS = ("jpg", "png", "webp", "gif", "bmp", "tiff")  # img2dataset names its column by format


def shard_count(kept: int, samples_per_shard: int) -> int:
    return max(1, math.ceil(kept / samples_per_shard))


def shard_of(uid: str, shards: int) -> int:
    return int(uid[:15], 16) % shards


def shard_name(index: int) -> str:
    return f"{index:05d}"


def sidecar_schema(ledger_schema: pa.Schema) -> pa.Schema:
    """img2dataset's sidecar leads with `key` (the tar key, here the uid)."""
    return pa.schema([pa.field("key", pa.string()), *ledger_schema])


def parquet_shard_schema(ledger_schema: pa.Schema) -> pa.Schema:
    fields = list(sidecar_schema(ledger_schema))
    return pa.schema(fields + [pa.field(c, pa.binary()) for c in IMAGE_COLUMNS])


def _row(sample: Sample) -> dict:
    row = ledger_row(sample, None)
    row["key"] = sample.uid
    return row


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # reproducible bytes
    tar.addfile(info, io.BytesIO(data))


def _json_default(value):
    return value.hex() if isinstance(value, bytes) else str(value)


def write_shard(index: int, samples: list[Sample], output: str, schema: pa.Schema, fmt: str) -> dict:
    """Write one shard and its sidecars; returns the shard's stats (also written as _stats.json)."""
    samples = sorted(samples, key=lambda s: s.uid)
    name = shard_name(index)
    base = fs.join(output, SHARDS_DIR, name)
    rows = [_row(s) for s in samples]
    if fmt == "parquet":
        for row, sample in zip(rows, samples):
            column = sample.image_format if sample.image_format in IMAGE_COLUMNS else "jpg"
            row[column] = sample.image
        with fs.atomic_write(base + ".parquet") as f:
            pq.write_table(rows_to_table(rows, parquet_shard_schema(schema)), f)
    else:
        with fs.atomic_write(base + ".tar") as f:
            with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for row, sample in zip(rows, samples):
                    ext = sample.image_format or "jpg"
                    _tar_member(tar, f"{sample.uid}.{ext}", sample.image)
                    _tar_member(tar, f"{sample.uid}.txt", sample.caption.encode("utf-8"))
                    meta = {k: v for k, v in row.items() if v is not None}
                    _tar_member(tar, f"{sample.uid}.json",
                                json.dumps(meta, ensure_ascii=False, sort_keys=True,
                                           default=_json_default).encode("utf-8"))
        with fs.atomic_write(base + ".parquet") as f:
            pq.write_table(rows_to_table(rows, sidecar_schema(schema)), f)
    stats = {
        "shard": name,
        "file": f"{name}.{'parquet' if fmt == 'parquet' else 'tar'}",
        "count": len(samples),
        "successes": len(samples),
        "image_bytes": sum(len(s.image) for s in samples),
        "formats": dict(sorted(Counter(s.image_format for s in samples).items())),
        "first_uid": samples[0].uid if samples else None,
        "last_uid": samples[-1].uid if samples else None,
    }
    fs.write_bytes(base + "_stats.json", json.dumps(stats, indent=2).encode())
    return stats


def write_sizes(output: str, shards: list[dict]) -> None:
    sizes = {s["file"]: s["count"] for s in shards}
    fs.write_bytes(fs.join(output, SHARDS_DIR, SIZES_FILE), json.dumps(sizes, indent=1).encode())
