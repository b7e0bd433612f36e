"""The element every stage speaks: a SampleBatch, the columns of a slice of one input, and the
Sample, a thin view of one of its rows.

A batch is a deterministic slice of one input source (source index + first row), so its id, and
everything derived from it (ledger part names), is the same on any runner and worker count.
It holds its rows column by column, so a rule over a whole column (matching a block of
captions, hashing uids, building ledger rows) is one call, not a loop over objects:

    core     uid, url, caption, source_key, image, width, height, image_format, sha256
    extras   the input's own columns, carried through to the ledger
    values   what stages computed: ledger columns
    vectors  large computed arrays (fp16 embeddings) kept off the ledger: a matrix + a mask

A column is an Arrow array (as read: no per-row Python objects until a stage asks), a Python
list (once a stage reads or writes it by row), or None (null in every row). Per-sample rules use
the row view: `sample.caption`, `sample.values["clip_score"] = s`, `sample.vectors[name]`.
"""
from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from operator import itemgetter
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa

from curate.ledger_layout import ledger_part_of


CORE_FIELDS = ("uid", "url", "caption", "source_key", "image", "width", "height", "image_format", "sha256")

Column = "list | pa.Array | None"


def make_uid(identity: str | None, caption: str | None) -> str:
    """32 hex chars from the source identity (url, else source key or file path) and caption.

    Never derived from run order, so a sample keeps its uid across reruns and reshards.
    """
    key = f"{identity or ''}\x00{caption or ''}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def as_list(column, n: int) -> list:
    """A column's values as a Python list (a new list for an Arrow array or an all-null column)."""
    if column is None:
        return [None] * n
    if isinstance(column, list):
        return column
    return column.to_pylist()


def take_column(column: Column, rows: list[int], indices: pa.Array | None = None) -> Column:
    """These rows of one column (`indices`: `rows` as an Arrow array, made once per batch)."""
    if column is None:
        return None
    if isinstance(column, list):
        if len(rows) == 1:
            return [column[rows[0]]]
        return list(itemgetter(*rows)(column)) if rows else []
    return column.take(pa.array(rows, pa.int64()) if indices is None else indices)


class Vectors:
    """One named vector per row (or none): a [rows, dim] matrix and a mask of the rows that have one."""

    __slots__ = ("matrix", "present")

    def __init__(self, matrix: np.ndarray | None, present: np.ndarray):
        self.matrix = matrix
        self.present = present

    @classmethod
    def empty(cls, n: int) -> "Vectors":
        return cls(None, np.zeros(n, dtype=bool))

    def get(self, i: int):
        return self.matrix[i] if self.present[i] else None

    def set(self, i: int, vector) -> None:
        if vector is None:
            self.present[i] = False
            return
        vector = np.asarray(vector)
        if self.matrix is None or self.matrix.shape[1:] != vector.shape or self.matrix.dtype != vector.dtype:
            old, self.matrix = self.matrix, np.zeros((len(self.present), *vector.shape), dtype=vector.dtype)
            if old is not None and self.present.any():  # a vector of another shape replaces them all
                self.present[:] = False
        self.matrix[i] = vector
        self.present[i] = True

    def take(self, rows) -> "Vectors":
        rows = np.asarray(rows, dtype=np.int64)
        return Vectors(None if self.matrix is None else self.matrix[rows], self.present[rows])


class SampleBatch:
    """A slice of one input, column by column. `SampleBatch(id, samples)` gathers Sample rows."""

    __slots__ = ("id", "n", "core", "extras", "values", "vectors", "origin")

    def __init__(self, id: str, samples: Iterable["Sample"] = ()):
        samples = list(samples)
        self.id = id
        self.n = len(samples)
        self.core = {name: [getattr(s, name) for s in samples] for name in CORE_FIELDS}
        self.extras = _gather(samples, "extras")
        self.values = _gather(samples, "values")
        self.vectors = {}
        for name in dict.fromkeys(k for s in samples for k in s.vectors):
            column = self.vectors[name] = Vectors.empty(self.n)
            for i, s in enumerate(samples):
                column.set(i, s.vectors.get(name))
        self.origin = None  # positions in the batch a stage judged, for a row judged alone

    @classmethod
    def from_columns(cls, id: str, n: int, core: dict | None = None, extras: dict | None = None,
                     values: dict | None = None, vectors: dict | None = None) -> "SampleBatch":
        """A batch of `n` rows from columns (Arrow arrays, lists, or None for all-null); core
        columns not given are null."""
        batch = cls.__new__(cls)
        batch.id, batch.n = id, n
        batch.core = {name: (core or {}).get(name) for name in CORE_FIELDS}
        batch.extras = dict(extras or {})
        batch.values = dict(values or {})
        batch.vectors = dict(vectors or {})
        batch.origin = None
        return batch

    def state(self) -> tuple:
        """What a batch is made of: whole columns pickle in C (Arrow arrays as their buffers)."""
        return self.id, self.n, self.core, self.extras, self.values, self.vectors

    def __reduce__(self):
        return _rebuild, self.state()

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator["Sample"]:
        return iter(self.samples)

    def __getitem__(self, i: int) -> "Sample":
        return Sample._view(self, range(self.n)[i])

    def __repr__(self) -> str:
        return f"SampleBatch({self.id!r}, {self.n} rows)"

    @property
    def samples(self) -> list["Sample"]:
        """A row view per sample. Made anew on each call and never kept by the batch: a batch that
        held views of itself would be a reference cycle, freed only by the cyclic collector, and a
        worker would hold its images until then."""
        return [Sample._view(self, i) for i in range(self.n)]

    @property
    def ledger_part(self) -> str:
        return ledger_part_of(self.id)

    # --- columns ---------------------------------------------------------------------------

    def column(self, name: str) -> list:
        """A core column as a list (materialized once: row views read it afterwards)."""
        return self._listed(self.core, name)

    def value_column(self, name: str) -> list:
        return self._listed(self.values, name) if name in self.values else [None] * self.n

    def extra_column(self, name: str) -> list:
        return self._listed(self.extras, name) if name in self.extras else [None] * self.n

    def _listed(self, columns: dict, name: str) -> list:
        column = columns[name]
        if not isinstance(column, list):
            column = columns[name] = as_list(column, self.n)
        return column

    def set_column(self, name: str, column) -> None:
        """A whole core column (list or Arrow array of n values)."""
        self.core[name] = column

    def set_values(self, name: str, column) -> None:
        """A whole value column (list or Arrow array of n values)."""
        self.values[name] = column

    def set_vectors(self, name: str, matrix: np.ndarray, present: np.ndarray | None = None) -> None:
        present = np.ones(self.n, dtype=bool) if present is None else np.asarray(present, dtype=bool)
        self.vectors[name] = Vectors(matrix, present)

    def first_vectors(self, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, fp16 [rows, dim]) of the rows that have one of the named vectors (1-D, not
        empty), the first name a row has winning."""
        chosen = np.full(self.n, -1)
        for k, name in reversed(list(enumerate(names))):
            column = self.vectors.get(name)
            if column is not None and column.matrix is not None and column.matrix.ndim == 2 and column.matrix.shape[1]:
                chosen[column.present] = k
        rows = np.flatnonzero(chosen >= 0)
        if not len(rows):
            return rows, np.zeros((0, 0), np.float16)
        return rows, np.stack([self.vectors[names[chosen[r]]].matrix[r] for r in rows]).astype(np.float16)

    def image_bytes(self) -> int:
        images = self.core["image"]
        if images is None:
            return 0
        if isinstance(images, list):
            return sum(len(b) for b in images if b is not None)
        return images.nbytes

    # --- rows ------------------------------------------------------------------------------

    def take(self, rows: list[int], keep_origin: bool = False) -> "SampleBatch":
        """The batch of these rows, in this order (same id). `keep_origin`: its rows remember
        their positions here (a row judged alone is still found by its position)."""
        rows = list(rows)
        indices = pa.array(rows, pa.int64())
        out = SampleBatch.from_columns(
            self.id, len(rows),
            core={k: take_column(c, rows, indices) for k, c in self.core.items()},
            extras={k: take_column(c, rows, indices) for k, c in self.extras.items()},
            values={k: take_column(c, rows, indices) for k, c in self.values.items()},
            vectors={k: v.take(rows) for k, v in self.vectors.items()})
        if keep_origin:
            origin = self.origin
            out.origin = [origin[r] if origin is not None else r for r in rows]
        return out

    def put_rows(self, rows: list[int], other: "SampleBatch") -> None:
        """Copy `other`'s rows (every column) into these rows: what a row judged alone recorded."""
        for mine, theirs in ((self.core, other.core), (self.extras, other.extras), (self.values, other.values)):
            for name, column in theirs.items():
                if column is None and mine.get(name) is None:
                    continue
                target = self._listed(mine, name) if name in mine else mine.setdefault(name, [None] * self.n)
                source = as_list(column, other.n)
                for r, value in zip(rows, source):
                    target[r] = value
        for name, vectors in other.vectors.items():
            target = self.vectors.setdefault(name, Vectors.empty(self.n))
            for k, r in enumerate(rows):
                target.set(r, vectors.get(k))

    def position(self, i: int) -> int:
        """Where row i stood in the batch a stage judged (itself unless it was taken with keep_origin)."""
        return i if self.origin is None else self.origin[i]


def _gather(samples: list["Sample"], attr: str) -> dict[str, list]:
    names = dict.fromkeys(k for s in samples for k in getattr(s, attr))
    return {name: [getattr(s, attr).get(name) for s in samples] for name in names}


def _rebuild(id, n, core, extras, values, vectors) -> SampleBatch:
    return SampleBatch.from_columns(id, n, core, extras, values, vectors)


def rebuild_batch(state: tuple) -> SampleBatch:
    """The batch of `SampleBatch.state()`."""
    return _rebuild(*state)


class _RowMap(MutableMapping):
    """One row of a group of columns (values or extras) as a dict; None means absent."""

    __slots__ = ("_batch", "_columns", "_i")

    def __init__(self, batch: SampleBatch, columns: dict, i: int):
        self._batch, self._columns, self._i = batch, columns, i

    def __getitem__(self, name):
        column = self._columns.get(name, None)
        value = None if column is None else self._batch._listed(self._columns, name)[self._i]
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name, value):
        if name in self._columns and self._columns[name] is not None:
            self._batch._listed(self._columns, name)[self._i] = value
        elif value is not None:
            column = self._columns[name] = [None] * self._batch.n
            column[self._i] = value

    def __delitem__(self, name):
        self[name]  # KeyError when absent, as a dict
        self._batch._listed(self._columns, name)[self._i] = None

    def __iter__(self):
        return (name for name in list(self._columns) if self.get(name) is not None)

    def __len__(self):
        return sum(1 for _ in self)

    def __repr__(self):
        return repr(dict(self))


class _RowVectors(MutableMapping):
    __slots__ = ("_batch", "_i")

    def __init__(self, batch: SampleBatch, i: int):
        self._batch, self._i = batch, i

    def __getitem__(self, name):
        column = self._batch.vectors.get(name)
        vector = None if column is None else column.get(self._i)
        if vector is None:
            raise KeyError(name)
        return vector

    def __setitem__(self, name, vector):
        self._batch.vectors.setdefault(name, Vectors.empty(self._batch.n)).set(self._i, vector)

    def __delitem__(self, name):
        self[name]
        self._batch.vectors[name].set(self._i, None)

    def __iter__(self):
        return (name for name, column in list(self._batch.vectors.items()) if column.present[self._i])

    def __len__(self):
        return sum(1 for _ in self)


def _core_property(name: str):
    def get(self):
        column = self._batch.core[name]
        if column is None:
            return None
        return self._batch._listed(self._batch.core, name)[self._i]

    def set(self, value):
        batch = self._batch
        if batch.core[name] is None:
            if value is None:
                return
            batch.core[name] = [None] * batch.n
        batch._listed(batch.core, name)[self._i] = value

    return property(get, set)


class Sample:
    """One row of a SampleBatch. `Sample(uid, url, caption, ...)` makes a sample of its own (a
    batch of one row); stages see rows of the batch they judge (`batch.samples`)."""

    __slots__ = ("_batch", "_i")

    def __init__(self, uid: str, url: str | None = None, caption: str | None = None, source_key: str | None = None,
                 image: bytes | None = None, width: int | None = None, height: int | None = None,
                 image_format: str | None = None, sha256: str | None = None, extras: dict | None = None,
                 values: dict | None = None, vectors: dict | None = None):
        core = dict(uid=[uid], url=[url], caption=[caption], source_key=[source_key], image=[image],
                    width=[width], height=[height], image_format=[image_format], sha256=[sha256])
        batch = SampleBatch.from_columns(
            "", 1, core, {k: [v] for k, v in (extras or {}).items()}, {k: [v] for k, v in (values or {}).items()})
        for name, vector in (vectors or {}).items():
            batch.vectors[name] = Vectors.empty(1)
            batch.vectors[name].set(0, vector)
        self._batch, self._i = batch, 0

    @classmethod
    def _view(cls, batch: SampleBatch, i: int) -> "Sample":
        view = cls.__new__(cls)
        view._batch, view._i = batch, i
        return view

    uid = _core_property("uid")
    url = _core_property("url")
    caption = _core_property("caption")
    source_key = _core_property("source_key")
    image = _core_property("image")
    width = _core_property("width")
    height = _core_property("height")
    image_format = _core_property("image_format")
    sha256 = _core_property("sha256")

    @property
    def extras(self) -> _RowMap:
        return _RowMap(self._batch, self._batch.extras, self._i)

    @property
    def values(self) -> _RowMap:
        return _RowMap(self._batch, self._batch.values, self._i)

    @property
    def vectors(self) -> _RowVectors:
        return _RowVectors(self._batch, self._i)

    @property
    def pos(self) -> int:
        """Its position in the batch a stage judged (the same when it is judged alone)."""
        return self._batch.position(self._i)

    def as_dict(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in CORE_FIELDS},
                "extras": dict(self.extras), "values": dict(self.values)}

    def __eq__(self, other):
        return isinstance(other, Sample) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"Sample(uid={self.uid!r}, url={self.url!r}, caption={self.caption!r})"
