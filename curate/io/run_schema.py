"""Rows (dicts) to Arrow tables with one schema for the whole run.

Every ledger part and shard sidecar of a run shares one schema, fixed before the pipeline
starts (core columns + the columns the recipe's stages declare + the source's extra
columns), so `pandas.read_parquet(folder)` works on all of them together. Values that do not
fit their column (or columns nobody declared) go to `extra_json` rather than being lost.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

import pyarrow as pa

from curate.sample import CORE_COLUMNS

CORE_TYPES: dict[str, pa.DataType] = {
    "uid": pa.string(), "url": pa.string(), "caption": pa.string(), "status": pa.string(),
    "reason": pa.string(), "source_key": pa.string(), "width": pa.int64(),
    "height": pa.int64(), "image_format": pa.string(), "sha256": pa.string(),
}
assert tuple(CORE_TYPES) == CORE_COLUMNS
EXTRA_JSON = "extra_json"


def build_schema(*column_groups: dict[str, pa.DataType]) -> pa.Schema:
    """Core columns first, then each group's columns in order; the first type given wins."""
    columns = dict(CORE_TYPES)
    for group in column_groups:
        for name, type_ in group.items():
            columns.setdefault(name, type_)
    columns[EXTRA_JSON] = pa.string()
    return pa.schema(list(columns.items()))


def arrow_type_of(values: Iterable[Any]) -> pa.DataType:
    """The Arrow type of a few example values; strings when they disagree or are nested."""
    sample = [v for v in values if v is not None]
    if not sample:
        return pa.string()
    try:
        type_ = pa.array(sample).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError):
        return pa.string()
    if pa.types.is_null(type_) or pa.types.is_struct(type_) or pa.types.is_map(type_):
        return pa.string()
    return type_


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_json_default)


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    names = set(schema.names)
    if all(names.issuperset(row) for row in rows):
        try:  # the common case, converted in C++
            return pa.Table.from_pylist(rows, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            pass
    overflow: list[dict[str, Any]] = [
        {k: v for k, v in row.items() if k not in names and v is not None} for row in rows
    ]
    arrays = []
    for field in schema:
        if field.name == EXTRA_JSON:
            arrays.append(None)
            continue
        values = [row.get(field.name) for row in rows]
        try:
            arrays.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            arrays.append(array_keeping_misfits(field, values, overflow))
    extra = [to_json(o) if o else None for o in overflow]
    arrays[schema.get_field_index(EXTRA_JSON)] = pa.array(extra, type=pa.string())
    return pa.Table.from_arrays(arrays, schema=schema)


def array_keeping_misfits(field: pa.Field, values: list, overflow: list[dict]) -> pa.Array:
    """Cell by cell: a value that does not fit the column moves to that row's extra_json."""
    fitted = []
    for value, extra in zip(values, overflow):
        if value is None:
            fitted.append(None)
            continue
        try:
            pa.array([value], type=field.type)
            fitted.append(value)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            if pa.types.is_string(field.type):
                fitted.append(to_json(value))
                continue
            fitted.append(None)
            extra[field.name] = value
    return pa.array(fitted, type=field.type)
