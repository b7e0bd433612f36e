"""MetaCLIP's entry distribution before and after balancing, from the ledger's `entry_ids`.

Three counts per metadata entry (captions whose match list holds it): over the pool that
reached matching (before), over the captions balancing kept (whatever happened to them later),
and over the finally kept samples. Balancing caps head entries (count > t) near t and keeps
every tail entry's captions, so `balanced` should be flat at t for the head and equal to
`before` for the tail; the tables and plots show how close a run came.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curate.stats.distributions import kept_mask

ENTRY_IDS = "entry_ids"
STAGE = "metaclip:"
TOP_KS = (10, 100, 1000)


def _grow(counts: np.ndarray, size: int) -> np.ndarray:
    return counts if counts.size >= size else np.concatenate([counts, np.zeros(size - counts.size, np.int64)])


class Entries:
    def __init__(self, size: int = 0):
        self.before = np.zeros(size, np.int64)
        self.balanced = np.zeros(size, np.int64)
        self.kept = np.zeros(size, np.int64)
        self.pool = 0  # captions that reached matching
        self.matched = 0  # of which matched at least one entry
        self.balanced_captions = 0
        self.kept_captions = 0

    @staticmethod
    def columns(available: list[str]) -> list[str]:
        return [ENTRY_IDS, "status", "reason"]

    def _count(self, name: str, ids: pa.ChunkedArray) -> None:
        flat = pc.list_flatten(ids).to_numpy(zero_copy_only=False).astype(np.int64)
        if not flat.size:
            return
        counts = np.bincount(flat)
        current = _grow(getattr(self, name), counts.size)
        current[: counts.size] += counts
        setattr(self, name, current)

    def add(self, table: pa.Table) -> None:
        if ENTRY_IDS not in table.column_names:
            return
        table = table.filter(table.column(ENTRY_IDS).is_valid())
        ids = table.column(ENTRY_IDS)
        matched = pc.greater(pc.list_value_length(ids), 0)
        balanced = pc.and_(matched, pc.invert(pc.starts_with(table.column("reason").fill_null(""), STAGE)))
        kept = pc.and_(matched, kept_mask(table))
        self.pool += table.num_rows
        self.matched += int(pc.sum(pc.cast(matched, pa.int64())).as_py() or 0)
        self.balanced_captions += int(pc.sum(pc.cast(balanced, pa.int64())).as_py() or 0)
        self.kept_captions += int(pc.sum(pc.cast(kept, pa.int64())).as_py() or 0)
        self._count("before", ids)
        self._count("balanced", ids.filter(balanced))
        self._count("kept", ids.filter(kept))

    def merge(self, other: "Entries") -> "Entries":
        for name in ("before", "balanced", "kept"):
            mine, theirs = getattr(self, name), getattr(other, name)
            size = max(mine.size, theirs.size)
            setattr(self, name, _grow(mine, size) + _grow(theirs, size))
        for name in ("pool", "matched", "balanced_captions", "kept_captions"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    # -- results -----------------------------------------------------------------------------
    def _aligned(self, size: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size = max(size, self.before.size, self.balanced.size, self.kept.size)
        return _grow(self.before, size), _grow(self.balanced, size), _grow(self.kept, size)

    def summary(self, t: float | None) -> dict:
        before, balanced, kept = self._aligned()
        out = {"pool": self.pool, "captions_matched": self.matched,
               "captions_after_balancing": self.balanced_captions, "captions_kept": self.kept_captions,
               "entries_matched": int((before > 0).sum()), "matches": int(before.sum()),
               "entries_matched_after_balancing": int((balanced > 0).sum()),
               "entries_kept": int((kept > 0).sum())}
        for k in TOP_KS:
            for name, counts in (("before", before), ("balanced", balanced), ("kept", kept)):
                top = np.sort(counts)[::-1][:k].sum()
                out[f"top{k}_share_{name}"] = float(top / counts.sum()) if counts.sum() else float("nan")
        if t is not None:
            head = before > t
            tail = (before > 0) & ~head
            out.update({
                "t": t, "entries_over_t": int(head.sum()),
                "head_share_of_matches_before": float(before[head].sum() / max(before.sum(), 1)),
                "head_share_of_matches_balanced": float(balanced[head].sum() / max(balanced.sum(), 1)),
                "head_median_balanced_over_t": float(np.median(balanced[head] / t)) if head.any() else float("nan"),
                "entries_over_t_after_balancing": int((balanced > t).sum()),
                "tail_retention": float(balanced[tail].sum() / before[tail].sum()) if tail.any() else float("nan"),
            })
        return out

    def top(self, t: float | None, entries: list[str] | None = None, k: int = 25) -> pd.DataFrame:
        """The k entries with the most captions before balancing, with what balancing did to them."""
        before, balanced, kept = self._aligned(len(entries or ()))
        order = np.argsort(-before, kind="stable")[:k]
        order = order[before[order] > 0]
        frame = pd.DataFrame({
            "entry_id": order,
            "entry": [entries[i] if entries is not None and i < len(entries) else f"#{i}" for i in order],
            "before": before[order], "balanced": balanced[order], "kept": kept[order]})
        if t is not None:
            frame["p_entry"] = np.minimum(1.0, t / frame["before"].clip(lower=1))
            frame["balanced_over_t"] = frame["balanced"] / t
        return frame

    def rank_curves(self) -> pd.DataFrame:
        """Counts sorted high to low (rank 1 = commonest) before/after balancing: the long-tail plot."""
        before, balanced, kept = self._aligned()
        n = int((before > 0).sum())
        return pd.DataFrame({"rank": np.arange(1, n + 1),
                             "before": np.sort(before)[::-1][:n], "balanced": np.sort(balanced)[::-1][:n],
                             "kept": np.sort(kept)[::-1][:n]})
