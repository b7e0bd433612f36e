"""Re-cut a run from its ledger: named cuts and `--where` expressions, AND-combined, exact.

Every cut is a predicate over the whole ledger; a row is selected when all are true. The
ledger is streamed part by part, reading only the columns the cuts name, so memory is flat in
the number of rows (the selected uids are spilled to disk and sorted bucket by bucket).

`--keep_fraction dfn_score=0.15` is the scoring stage's pool cut, computed by its own code
(curate/score/pool_cut.py, two 65,536-bin histogram passes over the float32 scores): the pool
is what reached the scoring stage's cut, i.e. the rows where every model score of the run
(`dfn_score`, `clip_score`, those the ledger has) is present; the threshold is the score of the
k-th best, k = floor(f * pool + 1/2), and ties with it are kept. So a cut from a ledger at a
fraction equals the kept set of the same scoring run at that fraction.

Unless `--reason` says otherwise, only rows that were kept or dropped by the score cut itself
(`score:below_threshold`, `score:not_target_cluster`) are candidates: a re-cut never brings back
a sample that failed its download, a filter or dedup.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from curate.errors import UsageError
from curate.filters.language import LANGUAGE
from curate.io import files as fs
from curate.io.ledger import LEDGER_DIR
from curate.score import pool_cut
from curate.score.names import BELOW, NAME as SCORE_STAGE, OFF_TARGET
from curate.score.options import ROLES
from curate.subset.format import SortedWriter, hex_to_keys
from curate.subset.where import Column, Compare, In, Literal, Node, glob_to_like, parse_where

KEPT = "kept"
DEFAULT_REASONS = (KEPT, f"{SCORE_STAGE}:{BELOW}", f"{SCORE_STAGE}:{OFF_TARGET}")
BATCH_ROWS = 1 << 17


def ledger_files(path: str) -> list[str]:
    """The ledger parts of a run folder, a ledger folder, a Parquet file or a glob of them."""
    if fs.is_dir(path):
        folder = fs.join(path, LEDGER_DIR) if fs.is_dir(fs.join(path, LEDGER_DIR)) else path
        files = [f for f in fs.list_dir(folder, (".parquet",)) if fs.TMP_MARK not in os.path.basename(f)]
        if not files:
            raise UsageError(f"ledger: no ledger parts (*.parquet) under {path}")
        return files
    files = fs.expand_pattern(path)
    if not files:
        raise UsageError(f"ledger: no such run folder or ledger file: {path}")
    return files


def score_columns(schema: pa.Schema) -> list[str]:
    """The run's model score columns (`<role>_score`, named as curate.score.stages.score_column)."""
    return [f"{role}_score" for role in ROLES if f"{role}_score" in schema.names]


class Ledger:
    def __init__(self, path: str):
        self.path = path
        self.files = ledger_files(path)
        try:
            self.dataset = ds.dataset(self.files, format="parquet")
        except (pa.ArrowInvalid, OSError) as e:
            raise UsageError(f"ledger: cannot read {path} as Parquet ({str(e).splitlines()[0][:120]})") from None
        self.schema = self.dataset.schema

    def batches(self, columns: list[str]):
        # little read-ahead: memory stays a few batches whatever the ledger size
        yield from self.dataset.to_batches(columns=sorted(set(columns)), batch_size=BATCH_ROWS,
                                           batch_readahead=2, fragment_readahead=1)


class ReasonIn(Node):
    """The row's fate matches one of shell-style patterns over `reason`; `kept` = a kept row."""

    def __init__(self, patterns: list[str]):
        self.patterns = list(patterns)
        self.text = "reason in " + " | ".join(self.patterns)

    def columns(self):
        return {"status", "reason"}

    def mask(self, batch):
        reason = batch.column("reason")
        out = None
        for pattern in self.patterns:
            if pattern == KEPT:
                part = pc.equal(batch.column("status"), KEPT)
            else:
                part = pc.match_like(reason, glob_to_like(pattern)).fill_null(False)
            out = part if out is None else pc.or_(out, part)
        return out


class InPool(Node):
    """The row reached the scoring stage's cut: every model score of the run is there (not NaN)."""

    def __init__(self, columns: list[str]):
        self._columns = list(columns)
        self.text = " and ".join(f"{c} is not null" for c in columns)

    def columns(self):
        return set(self._columns)

    def mask(self, batch):
        out = None
        for name in self._columns:
            values = batch.column(name)
            ok = pc.is_valid(values)
            if pa.types.is_floating(values.type):
                ok = pc.and_(ok, pc.invert(pc.is_nan(values).fill_null(True)))
            out = ok if out is None else pc.and_(out, ok)
        return out


class KeepFraction(Node):
    """`column >= threshold` inside the pool; the threshold is set by `find_thresholds`."""

    def __init__(self, column: str, fraction: float, pool: InPool):
        self.column, self.fraction, self.pool = column, fraction, pool
        self.threshold: float | None = None
        self.text = f"top {fraction:g} of the pool by {column}"

    def columns(self):
        return {self.column} | self.pool.columns()

    def check(self, schema, flag):
        super().check(schema, flag)
        if not pa.types.is_floating(schema.field(self.column).type):
            raise UsageError(f"{flag}: {self.column} is {schema.field(self.column).type}, not a score (float) column")

    def mask(self, batch):
        scores = batch.column(self.column).cast(pa.float32())
        above = pc.greater_equal(scores, pa.scalar(np.float32(self.threshold), pa.float32()))
        return pc.and_kleene(self.pool.mask(batch), above)


@dataclass
class CutSpec:
    """What `cut` selects: every predicate true (AND); `uid_column` names the uid to export."""

    predicates: list[Node] = field(default_factory=list)
    uid_column: str = "uid"

    @property
    def fractions(self) -> list[KeepFraction]:
        return [p for p in self.predicates if isinstance(p, KeepFraction)]


def _pair(value: str, flag: str) -> tuple[str, float]:
    column, sep, number = value.partition("=")
    try:
        if not sep or not column.strip():
            raise ValueError
        return column.strip(), float(number)
    except ValueError:
        raise UsageError(f"{flag}: expected COLUMN=NUMBER, got {value!r}") from None


def build_spec(schema: pa.Schema, where=(), keep_fraction=(), minimum=(), maximum=(), language=(),
               reason=None, uid_column: str = "uid") -> CutSpec:
    """Named cuts and expressions -> a checked CutSpec (UsageError naming the flag when bad)."""
    checked: list[tuple[Node, str]] = []
    for text in where:
        checked.append((parse_where(text), "--where"))
    run_scores = score_columns(schema)
    for value in keep_fraction:
        column, fraction = _pair(value, "--keep_fraction")
        if not 0 < fraction <= 1:
            raise UsageError(f"--keep_fraction: the fraction must be in (0, 1], got {fraction:g}")
        pool = InPool(list(dict.fromkeys([*run_scores, column])))
        checked.append((KeepFraction(column, fraction, pool), "--keep_fraction"))
    for values, op, flag in ((minimum, ">=", "--min"), (maximum, "<=", "--max")):
        for value in values:
            column, number = _pair(value, flag)
            checked.append((Compare(Column(column), op, Literal(number)), flag))
    if language:
        checked.append((In(Column(LANGUAGE), list(language)), "--language"))
    checked.append((ReasonIn(list(reason) if reason else list(DEFAULT_REASONS)), "--reason"))
    for node, flag in checked:
        node.check(schema, flag)
    if uid_column not in schema.names:
        raise UsageError(f"--uid_column: no column {uid_column!r} in the ledger")
    return CutSpec([n for n, _ in checked], uid_column)


def find_thresholds(ledger: Ledger, cuts: list[KeepFraction]) -> dict:
    """The scoring stage's exact pool cut (pool_cut's two histogram passes) for each fraction."""
    if not cuts:
        return {}
    by_name = {f"{c.column}#{i}": c for i, c in enumerate(cuts)}
    fractions = {name: c.fraction for name, c in by_name.items()}
    columns = set().union(*(c.columns() for c in cuts))

    def keys_of(batch):
        return {name: pool_cut.sort_keys(pc.filter(batch.column(c.column).cast(pa.float32()),
                                                   c.pool.mask(batch)).to_numpy(zero_copy_only=False))
                for name, c in by_name.items()}

    counts = pool_cut._Histograms(tuple(by_name))
    high = counts.create_accumulator()
    for batch in ledger.batches(list(columns)):
        high = counts.add_input(high, pool_cut._high_bins(keys_of(batch)))
    located = pool_cut._pick_bins(high, fractions)
    low = counts.create_accumulator()
    if any(v is not None for v in located.values()):
        for batch in ledger.batches(list(columns)):
            low = counts.add_input(low, pool_cut._low_bins(keys_of(batch), located))
    facts = pool_cut._finish(low, high, located, fractions)
    out = {}
    for name, c in by_name.items():
        c.threshold = facts[name]["threshold"]
        out[c.column] = {**facts[name], "threshold": c.threshold if np.isfinite(c.threshold) else None}
    return out


def select(ledger: Ledger, spec: CutSpec, to: str) -> dict:
    """Stream the ledger once, write the selected uids as a DataComp subset; returns the counts."""
    columns = {spec.uid_column}.union(*(p.columns() for p in spec.predicates))
    matched = [0] * len(spec.predicates)
    rows = selected = bad = 0
    writer = SortedWriter(to)
    try:
        for batch in ledger.batches(list(columns)):
            rows += batch.num_rows
            keep = None
            for i, predicate in enumerate(spec.predicates):
                mask = predicate.mask(batch).fill_null(False)
                matched[i] += pc.sum(mask).as_py() or 0
                keep = mask if keep is None else pc.and_(keep, mask)
            uids = batch.column(spec.uid_column) if keep is None else pc.filter(batch.column(spec.uid_column), keep)
            keys, valid = hex_to_keys(uids)
            selected += len(uids)
            bad += int((~valid).sum())
            writer.add(keys)
    except BaseException:
        writer.abort()
        raise
    written = writer.close()
    return {"rows": rows, "selected_rows": selected, "uids": written["uids"],
            "repeated_uids": written["repeated"], "bad_uids": bad,
            "cuts": [{"cut": p.text, "rows": n} for p, n in zip(spec.predicates, matched)]}


def run_cut(source: str, to: str, summary_path: str | None = None, **named) -> dict:
    """Read the ledger, apply the cuts, write `to` (.npy) and its summary JSON; returns the summary."""
    started = time.time()
    ledger = Ledger(source)
    spec = build_spec(ledger.schema, **named)
    thresholds = find_thresholds(ledger, spec.fractions)
    counts = select(ledger, spec, to)
    summary = {"ledger": source, "ledger_parts": len(ledger.files), "output": to, "uid_column": spec.uid_column,
               **counts, "keep_fraction": thresholds, "wall_time_s": round(time.time() - started, 3)}
    fs.write_bytes(summary_path or summary_file(to), json.dumps(summary, indent=2).encode())
    return summary


def summary_file(npy_path: str) -> str:
    root = npy_path[:-4] if npy_path.endswith(".npy") else npy_path
    return root + ".json"
