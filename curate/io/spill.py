"""Batches parked on disk while they wait for a global value: the engine carries only their names.

Arrow record batches (the column-wise text graph, ledger rows) and whole SampleBatches with
their images (stages that wait for counts, cuts or dedup decisions) are parked the same way.

A runner keeps a PCollection that waits for a side input (global counts, dedup decisions) in
memory on FnApiRunner; parking each batch in a file and passing only its name keeps a worker's
memory flat in the pool size (Dataflow, Spark and Flink would spill such a shuffle themselves).
Files live under `<output>/_spill/`, are named by stage and batch (a retried bundle rewrites the
same file) and are removed with the folder when the run's outputs are complete.
"""
from __future__ import annotations

from typing import NamedTuple

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from curate.io import files as fs

SPILL_DIR = "_spill"


def spill_path(output: str, stage: str, batch_id: str) -> str:
    return fs.join(output, SPILL_DIR, f"{stage}-{batch_id}.arrow")


def park(path: str, batch: pa.RecordBatch) -> str:
    with fs.atomic_write(path) as f:
        with pa.ipc.new_stream(f, batch.schema) as writer:
            writer.write_batch(batch)
    return path


def fetch(path: str) -> pa.RecordBatch:
    with FileSystems.open(path) as f:
        table = pa.ipc.open_stream(f).read_all()
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)


def remove_all(output: str) -> None:
    folder = fs.join(output, SPILL_DIR)
    if FileSystems.exists(folder):
        FileSystems.delete([folder])


def park_batch(output: str, stage: str, batch) -> "BatchRef":
    """Write a SampleBatch (images included) under _spill/ and return the small reference to it."""
    import pickle

    path = spill_path(output, stage, batch.id).removesuffix(".arrow") + ".batch"
    with fs.atomic_write(path) as f:
        pickle.dump(batch.state(), f, protocol=pickle.HIGHEST_PROTOCOL)
    return BatchRef(batch.id, path, len(batch))


def fetch_batch(ref: "BatchRef"):
    import pickle

    from curate.sample import rebuild_batch

    with FileSystems.open(ref.path) as f:
        return rebuild_batch(pickle.loads(f.read()))


def rows_path(output: str, kind: str, part: str, name: str) -> str:
    """Where ledger-style rows of one part wait to be written together (`kind`: ledger | urls)."""
    return fs.join(output, SPILL_DIR, kind, part, f"{name}.arrow")


class BatchRef(NamedTuple):
    """What travels through the engine in place of a parked batch."""

    id: str
    path: str
    size: int
