"""The element types every stage speaks: a Sample, and the SampleBatch that carries them.

Beam's per-element cost is paid per batch, not per caption: a batch is a deterministic slice of
one input source (source index + first row), so its id, and everything derived from it
(ledger part names), is the same on any runner and worker count.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

# One ledger file holds this many consecutive input rows of one source, whatever the batch size.
ROWS_PER_LEDGER_PART = 100_000


def make_uid(identity: str | None, caption: str | None) -> str:
    """32 hex chars from the source identity (url, else source key or file path) and caption.

    Never derived from run order, so a sample keeps its uid across reruns and reshards.
    """
    key = f"{identity or ''}\x00{caption or ''}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(key, digest_size=16).hexdigest()


@dataclass(slots=True)
class Sample:
    uid: str
    url: str | None = None
    caption: str | None = None
    source_key: str | None = None  # the key or file path the sample had in its source
    image: bytes | None = None  # absent until downloaded or read
    width: int | None = None
    height: int | None = None
    image_format: str | None = None  # "jpg" | "png" | "webp" | ...
    sha256: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # input columns carried through
    values: dict[str, Any] = field(default_factory=dict)  # what stages computed (ledger columns)
    # vectors stages computed (e.g. fp16 CLIP embeddings), kept off the ledger: they are large
    vectors: dict[str, Any] = field(default_factory=dict)


_SAMPLE_FIELDS = tuple(f.name for f in fields(Sample))
_sample_state = attrgetter(*_SAMPLE_FIELDS)


def batch_state(batch: "SampleBatch") -> tuple[str, list[tuple]]:
    return batch.id, list(map(_sample_state, batch.samples))


def rebuild_batch(batch_id: str, states: list[tuple]) -> "SampleBatch":
    return SampleBatch(batch_id, [Sample(*state) for state in states])


@dataclass(slots=True)
class SampleBatch:
    id: str  # "<source:05d>-<first row:010d>"
    samples: list[Sample]

    def __reduce__(self):
        # Beam pickles batches between stages; samples as plain tuples pickle in C, ~5x faster
        # than the per-object __getstate__ of slots dataclasses
        return rebuild_batch, batch_state(self)

    @property
    def ledger_part(self) -> str:
        return ledger_part_of(self.id)

    def __len__(self) -> int:
        return len(self.samples)


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
