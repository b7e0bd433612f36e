"""Dedup decisions as small records: which row of which batch goes, why, and who it lost to.

Global steps emit them keyed by batch id, so the final pass looks up one key per batch
(a multimap side input that runners fetch per key), never a set of the whole corpus.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from curate.dedup.reasons import reason

DROP_DTYPE = np.dtype([
    ("batch", "S32"),
    ("pos", "<i4"),
    ("reason", "S24"),  # the detail after "dedup:" (reasons.py): url | sha256 | phash | semantic
    ("keeper", "S32"),  # uid of the kept sample it duplicates
    ("distance", "<f4"),  # 0 for exact, Hamming bits for phash, 1 - cosine for semantic
])


def drops(keys: np.ndarray, rows: np.ndarray, reasons, keepers: np.ndarray, distances) -> np.ndarray:
    """Drop records for `rows` of `keys`, each losing to the row `keepers[k]`."""
    out = np.zeros(len(rows), dtype=DROP_DTYPE)
    out["batch"] = keys["batch"][rows]
    out["pos"] = keys["pos"][rows]
    out["reason"] = reasons
    out["keeper"] = keys["uid"][keepers]
    out["distance"] = distances
    return out


def by_batch(records: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """(batch id, that batch's records) for every batch with at least one."""
    if not len(records):
        return
    records = records[np.argsort(records["batch"], kind="stable")]
    batches = records["batch"]
    cuts = np.flatnonzero(batches[1:] != batches[:-1]) + 1
    for part in np.split(records, cuts):
        yield part["batch"][0].decode(), part


def first_decisions(record_groups) -> dict[int, tuple[str, str, float]]:
    """pos -> (detail, keeper uid, distance) of the first record that drops that row."""
    decided: dict[int, tuple[str, str, float]] = {}
    for records in record_groups:
        for record in records:
            decided.setdefault(int(record["pos"]),
                               (record["reason"].decode(), record["keeper"].decode(), float(record["distance"])))
    return decided


def first_drops(record_groups, reasons: list) -> Iterator[tuple[int, str, float]]:
    """Sets `reasons[pos]` for each row the records drop (the first record wins; a row already
    dropped keeps its reason) and yields (pos, keeper uid, distance) for those rows."""
    for pos, (detail, keeper, distance) in first_decisions(record_groups).items():
        if reasons[pos] is None:
            reasons[pos] = reason(detail)
            yield pos, keeper, distance


def remaining(keys: np.ndarray, records: list[np.ndarray]) -> np.ndarray:
    """Mask of the rows of one batch's keys that no record drops."""
    if not records:
        return np.ones(len(keys), dtype=bool)
    return ~np.isin(keys["pos"], np.concatenate([r["pos"] for r in records]))
