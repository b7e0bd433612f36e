"""Rows that are one sample: the same uid (same url and caption, or same source key) listed twice.

Every input row keeps its ledger row, but only the first copy in input order (batch id, then
row) may be kept: the others are `input:duplicate_row`, whatever --dedup says, so no shard
ever holds a key twice. Each kept batch's uids travel as one array per part (a hash of the uid
modulo a part count that follows the pool, io/parts.py), never one element per row: a part
holds every copy of its uids, and a worker holds one part.
"""
from __future__ import annotations

from typing import Iterator

import apache_beam as beam
import numpy as np

from curate.io.parts import ROWS_PER_PART, hash_bytes, part_count, split

DUPLICATE_ROW = "input:duplicate_row"
ROW_DTYPE = np.dtype([("uid", "S32"), ("batch", "S32"), ("pos", "<i4")])


def uid_rows(batch_id: str, uids: list[str]) -> np.ndarray:
    """A kept batch's uids with where each row stands (its batch, its position)."""
    rows = np.zeros(len(uids), dtype=ROW_DTYPE)
    rows["uid"] = [u.encode() for u in uids]
    rows["batch"] = batch_id.encode()
    rows["pos"] = np.arange(len(uids))
    return rows


def later_copies(rows: np.ndarray) -> Iterator[tuple[str, int]]:
    """(batch id, position) of every row whose uid an earlier row (in batch, then position order) has."""
    rows = rows[np.lexsort((rows["pos"], rows["batch"], rows["uid"]))]
    later = np.flatnonzero(rows["uid"][1:] == rows["uid"][:-1]) + 1
    for row in rows[later]:
        yield row["batch"].decode(), int(row["pos"])


def _route(rows: np.ndarray, total: int, per_part: int):
    yield from split(hash_bytes(rows["uid"]) % np.uint64(part_count(total, per_part)), rows)


def _later_in_part(item) -> Iterator[tuple[str, int]]:
    _, arrays = item
    yield from later_copies(np.concatenate(list(arrays)))


class DuplicateRows(beam.PTransform):
    """uid_rows arrays, one per kept batch -> (batch id, position) of the later copies."""

    def __init__(self, rows_per_part: int = ROWS_PER_PART):
        super().__init__()
        self.per_part = rows_per_part

    def expand(self, rows):
        total = rows | "Sizes" >> beam.Map(len) | "Count" >> beam.CombineGlobally(sum)
        return (rows | "ToParts" >> beam.FlatMap(_route, beam.pvalue.AsSingleton(total), self.per_part)
                | "GroupParts" >> beam.GroupByKey()
                | "LaterCopies" >> beam.FlatMap(_later_in_part))
