"""A batch's (rank rows, fp16 embeddings) parked on disk while they wait for the centroids.

The k-means sample is taken as rows stream by, but assigning a row needs the centroids, which
exist only once every row was seen: a runner would hold every embedding until then (the pool,
in memory on FnApiRunner). Parked under `<output>/_spill/` (removed with it when the run's
outputs are complete), only the file name waits; a retried bundle rewrites the same file.
"""
from __future__ import annotations

import io

import numpy as np
from apache_beam.io.filesystems import FileSystems

from curate.io import files as fs
from curate.io.spill import SPILL_DIR


def park_rows(output: str, batch_id: str, rows: np.ndarray, embeddings: np.ndarray) -> str:
    path = fs.join(output, SPILL_DIR, f"balance_rows-{batch_id}.npz")
    buffer = io.BytesIO()
    np.savez(buffer, rows=rows, embeddings=embeddings)
    with fs.atomic_write(path) as f:
        f.write(buffer.getvalue())
    return path


def fetch_rows(path: str) -> tuple[np.ndarray, np.ndarray]:
    with FileSystems.open(path) as f:
        parked = np.load(io.BytesIO(f.read()))
        return parked["rows"], parked["embeddings"]
