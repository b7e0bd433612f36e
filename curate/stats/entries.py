"""MetaCLIP's entry distribution before and after balancing, from the ledger's `entry_ids`.

Three counts per metadata entry (captions whose match list holds it): over the pool that
reached matching (before), over the captions balancing kept (whatever happened to them later),
and over the finally kept samples. Balancing caps head entries (count > t) near t and keeps
every tail entry's captions, so `balanced` should be flat at t for the head and equal to
`before` for the tail; the tables and plots show how close a run came. DuckDB unnests the
lists and counts per entry (a row per entry id, not per caption, comes back).
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from curate.stats.distributions import KEPT

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

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, size: int = 0) -> "Entries":
        """One pass: each caption's entry ids, unnested, plus a -1 of its own, whose counts are the
        captions' (a caption with no match still counts there)."""
        out = cls(size)
        rows = (f"SELECT {ENTRY_IDS} AS ids, len({ENTRY_IDS}) > 0 AS matched, "
                f"len({ENTRY_IDS}) > 0 AND NOT starts_with(coalesce(reason, ''), '{STAGE}') AS balanced, "
                f"len({ENTRY_IDS}) > 0 AND coalesce({KEPT}, false) AS kept FROM ledger WHERE {ENTRY_IDS} IS NOT NULL")
        per_entry = con.execute(f"SELECT e, count(*) AS n_before, count_if(balanced) AS n_balanced, "
                                f"count_if(kept) AS n_kept, count_if(matched) AS n_matched FROM "
                                f"(SELECT unnest(list_prepend(-1, ids)) AS e, matched, balanced, kept FROM ({rows})) "
                                "WHERE e IS NOT NULL GROUP BY e").fetchnumpy()
        ids = np.asarray(per_entry["e"], np.int64)
        captions = ids == -1
        if captions.any():
            at = int(np.flatnonzero(captions)[0])
            out.pool, out.matched, out.balanced_captions, out.kept_captions = (
                int(per_entry[f"n_{name}"][at]) for name in ("before", "matched", "balanced", "kept"))
        ids, keep = ids[~captions], ~captions
        top = int(ids.max()) + 1 if ids.size else 0
        for name in ("before", "balanced", "kept"):
            counts = _grow(getattr(out, name), top)
            counts[ids] += np.asarray(per_entry[f"n_{name}"], np.int64)[keep]
            setattr(out, name, counts)
        return out

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
