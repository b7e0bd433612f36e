"""Shard numbering from per-batch counts, and a shard assembled from the fragments it spans.

The only global step of the writer: every batch's kept image count (a few bytes each) in one
list, sorted by batch id; shard k holds positions [k*S, (k+1)*S) of that order (S =
--samples_per_shard), so names are contiguous (00000 ... NNNNN), every shard but the last holds
exactly S samples, and the contents depend only on input, flags and seed: the same on any
runner and worker count. Assembling copies tar records (or Arrow rows) out of the fragments;
no image is decoded or shuffled.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from curate.io import files as fs
from curate.io import spill
from curate.io.fragments import END, FORMAT, IMAGE, IMAGE_BYTES, ROW, START, Finished, fragment_path
from curate.io.shard_format import IMAGE_COLUMNS, SHARDS_DIR, parquet_shard_schema, shard_name, tar_end

_PRIVATE = (ROW, START, END, IMAGE_BYTES, FORMAT, IMAGE)
COPY_CHUNK = 4 << 20


class Piece(NamedTuple):
    batch_id: str
    sidecar: str
    first: int  # rows [first, last) of that batch's sidecar
    last: int


class ShardTask(NamedTuple):
    index: int
    pieces: list[Piece]


def plan_shards(finished: list[Finished], samples_per_shard: int) -> list[ShardTask]:
    tasks: list[ShardTask] = []
    room = 0
    for batch in sorted(finished, key=lambda f: f.id):
        first = 0
        while first < batch.images:
            if room == 0:
                tasks.append(ShardTask(len(tasks), []))
                room = samples_per_shard
            last = min(batch.images, first + room)
            tasks[-1].pieces.append(Piece(batch.id, batch.sidecar, first, last))
            room -= last - first
            first = last
    return tasks


def write_shard(task: ShardTask, output: str, schema: pa.Schema, fmt: str) -> dict:
    """Write one shard and its sidecars from its pieces; returns its stats (also _stats.json)."""
    name = shard_name(task.index)
    base = fs.join(output, SHARDS_DIR, name)
    rows = pa.concat_tables([pa.Table.from_batches([spill.fetch(p.sidecar).slice(p.first, p.last - p.first)])
                             for p in task.pieces])
    if fmt == "parquet":
        with fs.atomic_write(base + ".parquet") as f:
            pq.write_table(_with_image_columns(rows, schema), f)
    else:
        with fs.atomic_write(base + ".tar") as f:
            size = 0
            for piece, table in zip(task.pieces, _piece_tables(task, rows)):
                size += _copy_records(fragment_path(output, piece.batch_id, "tar"), table, f)
            f.write(tar_end(size))
        with fs.atomic_write(base + ".parquet") as f:
            pq.write_table(rows.drop_columns([c for c in _PRIVATE if c in rows.column_names]), f)
    uids = rows.column("key").to_pylist()
    stats = {
        "shard": name,
        "file": f"{name}.{'parquet' if fmt == 'parquet' else 'tar'}",
        "count": rows.num_rows,
        "successes": rows.num_rows,
        "image_bytes": int(pa.compute.sum(rows.column(IMAGE_BYTES)).as_py() or 0),
        "formats": dict(sorted(Counter(rows.column(FORMAT).to_pylist()).items(), key=lambda kv: str(kv[0]))),
        "first_uid": uids[0] if uids else None,
        "last_uid": uids[-1] if uids else None,
    }
    fs.write_bytes(base + "_stats.json", json.dumps(stats, indent=2).encode())
    return stats


def _piece_tables(task: ShardTask, rows: pa.Table):
    offset = 0
    for piece in task.pieces:
        n = piece.last - piece.first
        yield rows.slice(offset, n)
        offset += n


def _copy_records(tar_path: str, table: pa.Table, out) -> int:
    """Copy the byte ranges of these rows out of a tar fragment, merging adjacent ranges."""
    starts, ends = table.column(START).to_pylist(), table.column(END).to_pylist()
    copied = 0
    with FileSystems.open(tar_path) as f:
        run_start = run_end = None
        for start, end in [*zip(starts, ends), (None, None)]:
            if run_end is not None and start == run_end:
                run_end = end
                continue
            if run_start is not None:
                f.seek(run_start)
                left = run_end - run_start
                while left:  # in chunks: a batch's images need not fit in memory at once
                    chunk = f.read(min(left, COPY_CHUNK))
                    out.write(chunk)
                    left -= len(chunk)
                copied += run_end - run_start
            run_start, run_end = start, end
    return copied


def _with_image_columns(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """img2dataset-style Parquet shard: the sidecar columns plus one binary column per format."""
    formats = rows.column(FORMAT).to_pylist()
    images = rows.column(IMAGE).to_pylist()
    columns = {c: [img if (f if f in IMAGE_COLUMNS else "jpg") == c else None for f, img in zip(formats, images)]
               for c in IMAGE_COLUMNS}
    out = rows.drop_columns([c for c in _PRIVATE if c in rows.column_names])
    for name, values in columns.items():
        out = out.append_column(name, pa.array(values, pa.binary()))
    return out.cast(parquet_shard_schema(schema))
