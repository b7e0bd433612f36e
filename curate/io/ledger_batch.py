"""Ledger rows as Arrow record batches, built from a batch's columns.

Dropped and kept samples travel to the ledger writer as one RecordBatch per batch (pickled as
Arrow buffers, not row by row), and the writer conforms every batch to the run's schema.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from curate.io.run_schema import EXTRA_JSON, fit_array, infer_array, to_json
from curate.sample import Sample, SampleBatch
from curate.ledger_layout import CORE_COLUMNS, extra_column

_CORE_ATTRS = [c for c in CORE_COLUMNS if c not in ("status", "reason")]


def _column(values) -> pa.Array:
    """An Arrow array of a column: as it is when it is one, else inferred (run_schema.infer_array)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values if isinstance(values, pa.Array) else infer_array(values)


def ledger_columns(batch: SampleBatch, reasons: list[str | None]) -> dict[str, Any]:
    """The one definition of a ledger row, column by column: identity and fate first, then what
    stages computed, then input columns (renamed where they shadow a core column)."""
    n = len(batch)
    columns: dict[str, Any] = {}
    for name in _CORE_ATTRS:
        column = batch.core[name]
        columns[name] = pa.nulls(n, pa.string()) if column is None else column
    columns["status"] = pa.array(["kept" if r is None else "dropped" for r in reasons], pa.string())
    columns["reason"] = pa.array(reasons, pa.string())
    for group, rename in ((batch.values, False), (batch.extras, True)):
        for name, column in group.items():
            name = extra_column(name) if rename else name
            if name not in columns and column is not None:
                columns[name] = column
    return columns


def ledger_batch(batch: SampleBatch, reasons: list[str | None] | None = None) -> pa.RecordBatch:
    """The ledger rows of a batch (every row kept where `reasons` is None)."""
    reasons = [None] * len(batch) if reasons is None else reasons
    columns = ledger_columns(batch, reasons)
    return pa.RecordBatch.from_arrays([_column(v) for v in columns.values()], names=list(columns))


def samples_to_batch(samples: list[Sample], reasons: list[str | None]) -> pa.RecordBatch:
    """The ledger rows of samples made one by one (a source's rows, tests)."""
    return ledger_batch(SampleBatch("", samples), reasons)


def ledger_row(sample: Sample, reason: str | None) -> dict[str, Any]:
    """One sample's ledger row as a dict of its Python values (its shard json and sidecar row)."""
    row: dict[str, Any] = {name: getattr(sample, name) for name in _CORE_ATTRS}
    row["status"] = "kept" if reason is None else "dropped"
    row["reason"] = reason
    for name, value in sample.values.items():
        row.setdefault(name, value)
    for name, value in sample.extras.items():
        row.setdefault(extra_column(name), value)
    return row


def conform(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """One table in the run's schema: missing columns null, misfits and unknown columns to extra_json."""
    return pa.Table.from_batches([_conform_one(b, schema) for b in batches], schema=schema)


def _conform_one(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    names = set(batch.schema.names)
    unknown = [n for n in batch.schema.names if n not in schema.names]
    overflow: list[dict] = [{} for _ in range(batch.num_rows)]
    for name in unknown:
        for row, value in zip(overflow, batch.column(name).to_pylist()):
            if value is not None:
                row[name] = value
    arrays = []
    for field in schema:
        if field.name == EXTRA_JSON:
            arrays.append(pa.array([to_json(o) if o else None for o in overflow], type=pa.string()))
        elif field.name not in names:
            arrays.append(pa.nulls(batch.num_rows, field.type))
        else:
            arrays.append(fit_array(field, batch.column(field.name), overflow))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
