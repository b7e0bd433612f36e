"""Ledger rows as Arrow record batches, built from samples column by column.

Dropped and kept samples travel to the ledger writer as one RecordBatch per batch (pickled as
Arrow buffers, not row by row), and the writer conforms every batch to the run's schema.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from curate.io.run_schema import EXTRA_JSON, fit_array, infer_array, to_json
from curate.sample import CORE_COLUMNS, Sample, extra_column

_CORE_ATTRS = [c for c in CORE_COLUMNS if c not in ("status", "reason")]


def ledger_columns(samples: list[Sample], reasons: list[str | None]) -> dict[str, list]:
    """The one definition of a ledger row, column by column: identity and fate first, then what
    stages computed, then input columns (renamed where they shadow a core column)."""
    columns: dict[str, Any] = {}
    for name in _CORE_ATTRS:
        columns[name] = [getattr(s, name) for s in samples]
    columns["status"] = ["kept" if r is None else "dropped" for r in reasons]
    columns["reason"] = reasons
    for attr, rename in (("values", False), ("extras", True)):
        names = dict.fromkeys(k for s in samples for k in getattr(s, attr))
        for name in names:
            column = extra_column(name) if rename else name
            if column not in columns:
                columns[column] = [getattr(s, attr).get(name) for s in samples]
    return columns


def samples_to_batch(samples: list[Sample], reasons: list[str | None]) -> pa.RecordBatch:
    """The ledger rows of these samples (status kept where the reason is None)."""
    columns = ledger_columns(samples, reasons)
    return pa.RecordBatch.from_arrays([infer_array(v) for v in columns.values()], names=list(columns))


def ledger_row(sample: Sample, reason: str | None) -> dict[str, Any]:
    """One sample's ledger row as a dict (its shard json and sidecar row)."""
    return {name: values[0] for name, values in ledger_columns([sample], [reason]).items()}


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
