"""The funnel: inputs -> what each stage dropped, by reason -> kept; stages in graph order.

Stage order is read from the ledger itself: values accumulate on a sample as it moves down the
graph, so a later stage's dropped rows carry more computed columns than an earlier stage's
(a `download:` drop in the MetaCLIP recipe carries its entry ids; a `filter:` drop in the DFN
recipe carries the download columns). Ties fall back to the usual order of curate's stages.
DuckDB counts rows by reason over the whole ledger, and the filled cells of every column per
stage over a few parts (as written: a NaN is a value there).
"""
from __future__ import annotations

from collections import Counter

import duckdb
import numpy as np
import pandas as pd

from curate.ledger.connection import file_list
from curate.ledger.expression import quote_name
from curate.stats.histogram import Counts
from curate.stats.sql import value_counts

USUAL_ORDER = ("input", "download", "filter", "image", "score", "metaclip", "dedup")
IDENTITY = {"uid", "url", "caption", "status", "reason", "source_key", "extra_json"}
KEPT = "kept"


def stage_of(reason: str) -> str:
    return reason.split(":", 1)[0]


class Funnel:
    """Rows by reason (all parts) and, from the first parts, which columns each stage's drops carry."""

    coverage_tables = 3  # the stage order needs only a few parts

    def __init__(self):
        self.reasons = Counts()
        self.rows: Counter = Counter()  # stage -> rows seen for coverage
        self.filled: Counter = Counter()  # (stage, column) -> non-null cells

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, coverage_files: list[str], available: list[str]) -> "Funnel":
        out = cls()
        out.reasons.add(value_counts(con, f"coalesce(reason, '{KEPT}')"))
        columns = [c for c in available if c not in IDENTITY]
        if coverage_files:
            filled = "".join(f", count({quote_name(c)})" for c in columns)
            for stage, rows, *cells in con.execute(
                    f"SELECT split_part(coalesce(reason, '{KEPT}'), ':', 1) AS stage, count(*){filled} "
                    f"FROM read_parquet({file_list(coverage_files)}) GROUP BY stage").fetchall():
                out.rows[stage] += rows
                for column, n in zip(columns, cells):
                    out.filled[(stage, column)] += n
        return out

    # -- results -----------------------------------------------------------------------------
    def stage_order(self) -> list[str]:
        stages = {stage_of(r) for r in self.reasons.counter if r != KEPT}

        def carried(stage: str) -> int:
            rows = self.rows.get(stage, 0)
            return sum(1 for (s, _), n in self.filled.items() if s == stage and rows and n * 2 > rows)

        def usual(stage: str) -> int:
            return USUAL_ORDER.index(stage) if stage in USUAL_ORDER else len(USUAL_ORDER)

        return sorted(stages, key=lambda s: (s != "input", carried(s), usual(s), s))

    @property
    def inputs(self) -> int:
        return self.reasons.n

    @property
    def kept(self) -> int:
        return self.reasons.counter.get(KEPT, 0)

    def funnel(self) -> pd.DataFrame:
        """One row per stage in order: samples in, dropped, out; then the kept total."""
        dropped_by_stage = Counter()
        for reason, n in self.reasons.counter.items():
            if reason != KEPT:
                dropped_by_stage[stage_of(reason)] += n
        rows, remaining = [], self.inputs
        rows.append({"stage": "inputs", "in": remaining, "dropped": 0, "out": remaining})
        for stage in self.stage_order():
            dropped = dropped_by_stage[stage]
            rows.append({"stage": stage, "in": remaining, "dropped": dropped, "out": remaining - dropped})
            remaining -= dropped
        frame = pd.DataFrame(rows, columns=["stage", "in", "dropped", "out"])
        frame["dropped_share_of_in"] = np.where(frame["in"] > 0, frame["dropped"] / frame["in"].clip(lower=1), 0.0)
        frame["out_share_of_inputs"] = frame["out"] / max(self.inputs, 1)
        return frame

    def by_reason(self) -> pd.DataFrame:
        order = {s: i for i, s in enumerate(self.stage_order())}
        rows = [{"stage": stage_of(r), "reason": r, "count": n}
                for r, n in self.reasons.counter.items() if r != KEPT]
        frame = pd.DataFrame(rows, columns=["stage", "reason", "count"])
        frame["share_of_inputs"] = frame["count"] / max(self.inputs, 1)
        frame["_order"] = frame["stage"].map(order)
        frame = frame.sort_values(["_order", "count", "reason"], ascending=[True, False, True])
        return frame.drop(columns="_order").reset_index(drop=True)
