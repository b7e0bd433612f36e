"""The ledger: one Parquet row per input sample, kept or dropped, with its reason and values.

Rows arrive grouped by ledger part (a run of consecutive batches of one source), are sorted
by uid and written as `ledger/part-<part>.parquet`; part names come from batch ids, so a
rerun overwrites the same files.
"""
from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io import files as fs
from curate.io.table import rows_to_table

LEDGER_DIR = "ledger"


def ledger_path(output: str, part: str) -> str:
    return fs.join(output, LEDGER_DIR, f"part-{part}.parquet")


def write_ledger_part(part: str, row_lists, output: str, schema: pa.Schema) -> dict:
    rows = sorted((r for rows in row_lists for r in rows), key=lambda r: (r["uid"], r["reason"] or ""))
    with fs.atomic_write(ledger_path(output, part)) as f:
        pq.write_table(rows_to_table(rows, schema), f, compression="zstd")
    return {
        "part": part,
        "rows": len(rows),
        "by_reason": dict(Counter(r["reason"] or "kept" for r in rows)),
    }
