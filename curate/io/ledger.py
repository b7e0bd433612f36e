"""The ledger: one Parquet row per input sample, kept or dropped, with its reason and values.

Rows arrive grouped by ledger part (a run of consecutive batches of one source), are sorted
by uid and written as `ledger/part-<part>.parquet`; part names come from batch ids, so a
rerun overwrites the same files.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from curate.blocklist.names import BLOCK_LIST
from curate.io import files as fs
from curate.io.ledger_batch import conform
from curate.io.ledger_parts import LEDGER_DIR


def ledger_path(output: str, part: str) -> str:
    return fs.join(output, LEDGER_DIR, f"part-{part}.parquet")


def write_ledger_part(part: str, batches, output: str, schema: pa.Schema) -> dict:
    table = sort_by_uid(conform(list(batches), schema))
    with fs.atomic_write(ledger_path(output, part)) as f:
        pq.write_table(table, f, compression="zstd")
    reasons = table.column("reason").fill_null("kept").value_counts().to_pylist()
    summary = {
        "part": part,
        "rows": table.num_rows,
        "by_reason": {r["values"]: r["counts"] for r in reasons},
    }
    if BLOCK_LIST in table.column_names:  # counts per block list: how many, never which
        lists = table.column(BLOCK_LIST).drop_null().value_counts().to_pylist()
        summary["by_block_list"] = {r["values"]: r["counts"] for r in lists}
    return summary


def sort_by_uid(table: pa.Table) -> pa.Table:
    """A fixed row order whatever order the batches arrived in."""
    return table.sort_by([("uid", "ascending"), ("reason", "ascending")])
