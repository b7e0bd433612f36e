"""Rows (dicts) to Arrow tables with one schema for the whole run.

Every ledger part and shard sidecar of a run shares one schema, fixed before the pipeline
starts (core columns + the columns the recipe's stages declare + the source's extra
columns), so `pandas.read_parquet(folder)` works on all of them together. Values that do not
fit their column (or columns nobody declared) go to `extra_json` rather than being lost.
"""
from __future__ import annotations

from typing import Any, Iterable

import pyarrow as pa

from curate.io import strict_json
from curate.sample import CORE_COLUMNS, OVERFLOW_COLUMN

CORE_TYPES: dict[str, pa.DataType] = {
    "uid": pa.string(), "url": pa.string(), "caption": pa.string(), "status": pa.string(),
    "reason": pa.string(), "source_key": pa.string(), "width": pa.int64(),
    "height": pa.int64(), "image_format": pa.string(), "sha256": pa.string(),
}
assert tuple(CORE_TYPES) == CORE_COLUMNS
EXTRA_JSON = OVERFLOW_COLUMN


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


def to_json(value: Any) -> str:
    return strict_json.dumps(value, ensure_ascii=False, sort_keys=True)


CONVERT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError,
                   ValueError)


def infer_array(values: list) -> pa.Array:
    """Python values as an Arrow column of their own type; values of several types (a JSONL
    column holding 5.5 and true) as a dense union, each in its own type, so that `fit_array`
    fits each to the run's column exactly; nested ones (dicts) as JSON text."""
    try:
        array = pa.array(values)
        # pa.array reads True as 1.0 among floats: such a column holds several types
        if not pa.types.is_struct(array.type) and not (
                pa.types.is_floating(array.type) and any(type(v) is bool for v in values)):
            return array
    except CONVERT_ERRORS:
        pass
    kinds: dict[type, int] = {}
    buckets: list[list] = []
    codes, offsets = [], []
    for value in values:
        code = kinds.setdefault(type(value), len(kinds))
        if code == len(buckets):
            buckets.append([])
        codes.append(code)
        offsets.append(len(buckets[code]))
        buckets[code].append(value)
    try:
        children = [pa.array(bucket) for bucket in buckets]
        if len(children) < 128 and not any(pa.types.is_struct(c.type) or pa.types.is_map(c.type) for c in children):
            return pa.UnionArray.from_dense(pa.array(codes, pa.int8()), pa.array(offsets, pa.int32()), children)
    except CONVERT_ERRORS:
        pass
    return pa.array([None if v is None else v if isinstance(v, str) else to_json(v) for v in values],
                    type=pa.string())


def casts_exactly(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether values of `source` type convert to `target` without being reinterpreted: an
    integer to an integer or float type that holds it (Arrow's checked cast refuses one out of
    range), a float to a float, any flat value to text. Text is never parsed as a number ("007"
    stays "007"), a float is never cut to an integer, a bool never becomes a number."""
    if pa.types.is_dictionary(source):
        source = source.value_type
    if source == target or pa.types.is_null(source):
        return True
    if pa.types.is_string(target) or pa.types.is_large_string(target):
        return not pa.types.is_nested(source)  # nested values become JSON text, cell by cell
    if pa.types.is_integer(source):
        return pa.types.is_integer(target) or pa.types.is_floating(target)
    if pa.types.is_floating(source):  # a stage's Python floats into its float32 column too
        return pa.types.is_floating(target)
    if _is_list(source) and _is_list(target):
        return casts_exactly(source.value_type, target.value_type)
    return False


def _is_list(type_: pa.DataType) -> bool:
    return pa.types.is_list(type_) or pa.types.is_large_list(type_)


def fit_array(field: pa.Field, array: pa.Array, overflow: list[dict]) -> pa.Array:
    """A column in the run's type: converted where that is exact, else cell by cell (a value
    that does not fit moves to its row's extra_json, under the column's name, as it was)."""
    if array.type == field.type:
        return array
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), field.type)
    if casts_exactly(array.type, field.type):
        try:
            return array.cast(field.type)
        except CONVERT_ERRORS:
            pass
    return array_keeping_misfits(field, array.to_pylist(), overflow)


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    names = set(schema.names)
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
            arrays.append(fit_array(field, infer_array(values), overflow))  # converted in C++
        except CONVERT_ERRORS:
            arrays.append(array_keeping_misfits(field, values, overflow))
    extra = [to_json(o) if o else None for o in overflow]
    arrays[schema.get_field_index(EXTRA_JSON)] = pa.array(extra, type=pa.string())
    return pa.Table.from_arrays(arrays, schema=schema)


def array_keeping_misfits(field: pa.Field, values: list, overflow: list[dict]) -> pa.Array:
    """Cell by cell: a value that does not fit the column exactly moves to that row's extra_json
    (in a text column, it is written as JSON text instead)."""
    fitted = []
    for value, extra in zip(values, overflow):
        if value is None:
            fitted.append(None)
            continue
        cell = _fitted_cell(value, field.type)
        if cell is not None:
            fitted.append(cell)
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            fitted.append(to_json(value))
        else:
            fitted.append(None)
            extra[field.name] = value
    return pa.array(fitted, type=field.type)


def _fitted_cell(value: Any, type_: pa.DataType) -> Any:
    """`value` as the column holds it, or None when it does not fit exactly."""
    try:
        cell = pa.array([value])
        if cell.type != type_:
            if not casts_exactly(cell.type, type_):
                return None
            cell = cell.cast(type_)
        return cell.to_pylist()[0]
    except CONVERT_ERRORS:
        return None
