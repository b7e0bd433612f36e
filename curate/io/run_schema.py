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
from curate.ledger_layout import CORE_COLUMNS, OVERFLOW_COLUMN

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
    """Whether values of `source` type convert to `target` without being reinterpreted: a number
    to a number type that holds it (Arrow's checked cast refuses an integer out of range and a
    float with a fraction: 3.0 fits an integer column, 5.5 does not), any flat value to text.
    Text is never parsed as a number ("007" stays "007"), a bool never becomes a number."""
    if pa.types.is_dictionary(source):
        source = source.value_type
    if source == target or pa.types.is_null(source):
        return True
    if _is_text(target):
        return not pa.types.is_nested(source)  # nested values become JSON text, cell by cell
    if pa.types.is_integer(source) or pa.types.is_floating(source):  # float32 columns take Python floats
        return _is_number(target)
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
    if all(names.issuperset(row) for row in rows) and not _coerced_by_arrow(rows, schema):
        try:  # the common case, converted in C++
            return pa.Table.from_pylist(rows, schema=schema)
        except CONVERT_ERRORS:
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
            arrays.append(fit_array(field, infer_array(values), overflow))  # converted in C++
        except CONVERT_ERRORS:
            arrays.append(array_keeping_misfits(field, values, overflow))
    extra = [to_json(o) if o else None for o in overflow]
    arrays[schema.get_field_index(EXTRA_JSON)] = pa.array(extra, type=pa.string())
    return pa.Table.from_arrays(arrays, schema=schema)


def _coerced_by_arrow(rows: list[dict[str, Any]], schema: pa.Schema) -> bool:
    """Whether Arrow's row conversion would change a value silently: it cuts a float (or reads
    anything but a Python int) into an integer column, and reads a bool in a float column as 1.0;
    other misfits it refuses."""
    for field in schema:
        type_, name = field.type, field.name
        if not (_is_number(type_) or _is_list(type_) and _is_number(type_.value_type)):
            continue  # a misfit in any other column is refused, then fitted cell by cell
        kinds = {type(row.get(name)) for row in rows}
        if _is_list(type_) and kinds <= {list, type(None)}:
            type_ = type_.value_type
            kinds = {type(item) for row in rows for item in row.get(name) or ()}
        if pa.types.is_integer(type_) and not kinds <= {int, type(None)}:
            return True
        if pa.types.is_floating(type_) and bool in kinds:
            return True
    return False


def array_keeping_misfits(field: pa.Field, values: list, overflow: list[dict]) -> pa.Array:
    """Cell by cell: a value that does not fit the column exactly moves to that row's extra_json
    (in a text column, it is written as JSON text instead)."""
    fitted, fit, text = [], _cell_fitter(field.type), _is_text(field.type)
    for value, extra in zip(values, overflow):
        if value is None:
            fitted.append(None)
            continue
        cell = fit(value)
        if cell is not None:
            fitted.append(cell)
        elif text:
            fitted.append(to_json(value))
        else:
            fitted.append(None)
            extra[field.name] = value
    return pa.array(fitted, type=field.type)


def _is_number(type_: pa.DataType) -> bool:
    return pa.types.is_integer(type_) or pa.types.is_floating(type_)


def _is_text(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


_PLAIN = (bool, int, float, str, bytes, list, dict)  # Python's own types: decided without Arrow


def _cell_fitter(type_: pa.DataType):
    """value -> the value as a column of `type_` holds it, or None when it does not fit exactly
    (the rule of casts_exactly, one value at a time)."""
    def by_arrow(value):
        try:
            cell = pa.array([value])
            if cell.type != type_:
                if not casts_exactly(cell.type, type_):
                    return None
                cell = cell.cast(type_)
            return cell.to_pylist()[0]
        except CONVERT_ERRORS:
            return None

    if pa.types.is_integer(type_):
        bits = type_.bit_width
        low, high = (-(1 << bits - 1), 1 << bits - 1) if pa.types.is_signed_integer(type_) else (0, 1 << bits)

        def fit_integer(value):
            if type(value) is float and value.is_integer():
                value = int(value)  # 3.0 is 3; 5.5 is no integer
            if type(value) is int:
                return value if low <= value < high else None
            return None if type(value) in _PLAIN else by_arrow(value)  # a fraction, a bool, text
        return fit_integer
    if pa.types.is_floating(type_):
        exact = 1 << {16: 11, 32: 24}.get(type_.bit_width, 53)  # the largest integer it holds exactly

        def fit_float(value):
            if type(value) is float:
                return value
            if type(value) is int:
                return value if -exact <= value <= exact else None
            return None if type(value) in _PLAIN else by_arrow(value)
        return fit_float
    if pa.types.is_boolean(type_):
        return lambda value: value if type(value) is bool else None if type(value) in _PLAIN else by_arrow(value)
    if _is_text(type_):
        return lambda value: value if type(value) is str else str(value) if type(value) is int else by_arrow(value)
    return by_arrow
