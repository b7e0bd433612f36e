"""JSON that strict readers accept: Python's json writes bare NaN and Infinity, which is not JSON.

A non-finite float (a carried input value such as a JSONL `-Infinity`, a stage's score) is
written as the string "NaN", "Infinity" or "-Infinity": the spellings Python's float() and
JavaScript's Number() read back, so the value is kept and every reader parses the file. Bytes
are written as hex, NumPy values as the Python values they hold, anything else as its text.
"""
from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """`value` with every non-finite float, at any depth, as its name."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    tolist = getattr(value, "tolist", None)  # NumPy scalars and arrays
    if callable(tolist):
        return finite(tolist())
    return str(value)


def dumps(value: Any, **options) -> str:
    """json.dumps that never writes NaN or Infinity (the common case pays one pass)."""
    try:
        return json.dumps(value, allow_nan=False, default=_default, **options)
    except ValueError:  # a non-finite float somewhere
        return json.dumps(finite(value), allow_nan=False, default=_default, **options)
