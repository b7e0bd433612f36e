"""How the ledger is laid out: which part a batch's rows go to, the columns every row has, and
the names an input's own columns take beside them.

A batch id is its source and first row, so a part (a block of consecutive input rows of one
source) is the same whatever the batch size, runner or worker count.
"""
from __future__ import annotations

# One ledger file holds this many consecutive input rows of one source, whatever the batch size.
ROWS_PER_LEDGER_PART = 100_000


def batch_id(source_index: int, first_row: int) -> str:
    return f"{source_index:05d}-{first_row:010d}"


def ledger_part_of(batch_id: str) -> str:
    """The ledger part a batch's rows belong to: its source and its block of input rows."""
    source, first_row = batch_id.split("-")
    return f"{source}-{int(first_row) // ROWS_PER_LEDGER_PART:05d}"


# Columns every ledger row has, in this order; stage values and source extras follow.
CORE_COLUMNS = (
    "uid", "url", "caption", "status", "reason", "source_key",
    "width", "height", "image_format", "sha256",
)


# Columns the shard sidecars add before the ledger's (img2dataset's `key`, here the uid).
SIDECAR_COLUMNS = ("key",)


# The ledger column that carries what fits no other column (run_schema.py).
OVERFLOW_COLUMN = "extra_json"


def extra_column(name: str) -> str:
    """Ledger column of an input column; one that shadows a core, sidecar or overflow column gets
    a prefix."""
    shadows = name in CORE_COLUMNS or name in SIDECAR_COLUMNS or name == OVERFLOW_COLUMN
    return f"src_{name}" if shadows else name
