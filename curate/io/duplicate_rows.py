"""Rows that are one sample: the same uid (same url and caption, or same source key) listed twice.

Every input row keeps its ledger row, but only the first copy in input order (batch id, then
row) may be kept: the others are `input:duplicate_row`, whatever --dedup says, so no shard
ever holds a key twice. The engine groups the uids; a group is the copies of one sample.
"""
from __future__ import annotations

import apache_beam as beam
import numpy as np

DUPLICATE_ROW = "input:duplicate_row"


def later_copies(uid_locations):
    """(uid, [(batch, row), ...]) -> (batch, row) of every copy after the first in input order."""
    _, locations = uid_locations
    for batch_id, row in sorted(locations)[1:]:
        yield batch_id, row


def _locations(keys: np.ndarray):
    for uid, batch, pos in zip(keys["uid"].tolist(), keys["batch"].tolist(), keys["pos"].tolist()):
        yield uid, (batch.decode(), int(pos))


class DuplicateRows(beam.PTransform):
    """Key arrays (dedup/keys.py KEY_DTYPE: batch, pos, uid of kept rows) -> (batch id, row) of later copies."""

    def expand(self, keys):
        return (keys | "Locations" >> beam.FlatMap(_locations) | "GroupUids" >> beam.GroupByKey()
                | "LaterCopies" >> beam.FlatMap(later_copies))
