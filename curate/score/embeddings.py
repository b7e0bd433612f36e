"""fp16 image embeddings of every scored sample, written beside the shards, keyed by uid.

`embeddings/<role>/part-<ledger part>.parquet`: columns `uid` (string) and `embedding`
(fixed_size_list<halffloat>[d], L2-normalized), rows sorted by uid, one file per ledger part
(the same part names as `ledger/`, so a join on uid stays local). Only these small keyed values
are grouped, never images. Each file is written under a temporary name and renamed.
"""
from __future__ import annotations

import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.io import files as fs
from curate.sample import SampleBatch
from curate.score.names import text_vector_name, vector_name  # noqa: F401  (imported from here too)

EMBEDDINGS_DIR = "embeddings"


def folder(role: str) -> str:
    return f"{EMBEDDINGS_DIR}/{role}"


def _keyed_rows(batch: SampleBatch, role: str):
    name = vector_name(role)
    with_vector = [s for s in batch.samples if name in s.vectors]
    if with_vector:
        yield batch.ledger_part, ([s.uid for s in with_vector], np.stack([s.vectors[name] for s in with_vector]))


def write_part(part: str, items, output: str, role: str) -> str:
    uids, rows = [], []
    for part_uids, matrix in items:
        uids.extend(part_uids)
        rows.append(matrix)
    matrix = np.concatenate(rows).astype(np.float16)
    order = np.argsort(np.array(uids), kind="stable")
    flat = pa.array(matrix[order].ravel())
    table = pa.table({"uid": pa.array([uids[i] for i in order], pa.string()),
                      "embedding": pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])})
    name = f"part-{part}.parquet"
    with fs.atomic_write(fs.join(output, EMBEDDINGS_DIR, role, name)) as f:
        pq.write_table(table, f)
    return name


class WriteEmbeddings(beam.PTransform):
    """Kept batches -> the names of the embedding files written."""

    def __init__(self, role: str, output: str):
        super().__init__()
        self.role = role
        self.output = output

    def expand(self, batches):
        return (batches
                | "KeyByPart" >> beam.FlatMap(_keyed_rows, self.role)
                | "GroupByPart" >> beam.GroupByKey()
                | "Write" >> beam.Map(lambda kv, output, role: write_part(*kv, output, role), self.output, self.role))


def read_embeddings(output: str, role: str) -> tuple[list[str], np.ndarray]:
    """(uids, float16 [n, d]) of a run's saved embeddings, in uid order."""
    directory = os.path.join(output, EMBEDDINGS_DIR, role)
    table = pq.read_table(directory).sort_by("uid")
    column = table.column("embedding").combine_chunks()
    width = column.type.list_size
    return table.column("uid").to_pylist(), column.values.to_numpy(zero_copy_only=False).reshape(-1, width)
