"""Re-cut a run from its ledger: named cuts and `--where` SQL tests, AND-combined, exact.

The ledger's parts are one DuckDB view (curate.ledger), locked before any expression is bound:
the connection reads those parts and nothing else. Every cut is a true/false SQL test over the
whole ledger (curate.ledger.expression checks each, `--where` and the named ones alike); a row
is selected when all are true (NULL, unknown, is not). DuckDB reads only the columns the cuts
name and works within its memory limit (spilling to disk), and the selected uids stream out
sorted, so memory does not grow with the ledger.

`--keep_fraction dfn_score=0.15` is the scoring stage's pool cut: the pool is what reached the
scoring stage's cut, the rows where every model score of the run (`dfn_score`, `clip_score`,
those the ledger has) is present (not NULL, not NaN); it keeps k = floor(f * pool + 1/2) as the
stage counts them (curate/score/ranks.py), down to the k-th best float32 score, ties kept. That
score is found exactly in two passes of bounded memory: the pool counted in 65,536 value bins
(floor((score - min) * scale): IEEE arithmetic is monotone, so bins are in score order), then,
in the one bin that holds the k-th best, its rank. So a cut from a ledger at a fraction equals
the kept set of the same scoring run at that fraction.

Unless `--reason` says otherwise, only rows that were kept or dropped by the score cut itself
(`score:below_threshold`, `score:not_target_cluster`) are candidates: a re-cut never brings back
a sample that failed its download, a filter or dedup.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import duckdb
import numpy as np

from curate.errors import UsageError
from curate.filters.language import LANGUAGE
from curate.io import files as fs
from curate.io.ledger_parts import ledger_parts
from curate.ledger.connection import add_ledger_view, column_range, connect, lock_to_ledger
from curate.ledger.expression import check, first_line, parse, quote_name, quote_text
from curate.score.names import BELOW, NAME as SCORE_STAGE, OFF_TARGET, ROLES, score_column
from curate.score.ranks import keep_count, locate_from_top
from curate.subset.format import DTYPE, npy_header

KEPT = "kept"
DEFAULT_REASONS = (KEPT, f"{SCORE_STAGE}:{BELOW}", f"{SCORE_STAGE}:{OFF_TARGET}")
BINS = 1 << 12  # value bins of the exact k-th-best search: a bin's rows are ranked in memory
FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")
IN_LEDGER = "in the ledger"


@dataclass
class Cut:
    """One predicate: `text` for the summary, `sql` a true/false test over the ledger view."""

    text: str
    sql: str


@dataclass
class Fraction:
    """`--keep_fraction COLUMN=F`: its pool, and the threshold once `find_thresholds` found it."""

    column: str
    fraction: float
    pool: str  # SQL: every model score of the run present
    threshold: float | None = None

    @property
    def score(self) -> str:
        return f"CAST({quote_name(self.column)} AS FLOAT)"  # float32, as the scoring stage ranks

    def cut(self) -> Cut:
        limit = "'inf'" if self.threshold is None else quote_text(repr(self.threshold))
        return Cut(f"top {self.fraction:g} of the pool by {self.column}",
                   f"({self.pool}) AND {self.score} >= CAST({limit} AS FLOAT)")


class Ledger:
    """A run's ledger parts as the DuckDB view `ledger`, locked to them."""

    def __init__(self, path: str):
        self.path = path
        self.files = ledger_parts(path)
        self.con = connect()
        try:
            add_ledger_view(self.con, self.files)
        except duckdb.Error as e:
            raise UsageError(f"ledger: cannot read {path} as Parquet ({first_line(e)[:160]})") from None
        lock_to_ledger(self.con, self.files)
        self.types = {row[0]: row[1] for row in self.con.execute("DESCRIBE ledger").fetchall()}

    def has(self, column: str, flag: str) -> None:
        if column not in self.types:
            raise UsageError(f"{flag}: no column {column!r} {IN_LEDGER} (columns: {', '.join(self.types)})")

    def test(self, text: str, flag: str) -> Cut:
        """An expression checked against the ledger: one line and exit 2 when it is not a test."""
        parsed = parse(text, flag)
        check(parsed, self.con, "ledger", flag, IN_LEDGER)
        return Cut(text, parsed.sql)


def score_columns(types: dict) -> list[str]:
    """The run's model score columns (`<role>_score`, named as curate.score.names.score_column)."""
    return [score_column(role) for role in ROLES if score_column(role) in types]


def _pair(value: str, flag: str) -> tuple[str, str]:
    """`COLUMN=NUMBER` -> (column, the number as a SQL decimal)."""
    column, sep, number = value.partition("=")
    try:
        if not sep or not column.strip():
            raise ValueError
        exact = Decimal(number.strip())
        if not exact.is_finite():
            raise ValueError
    except (ValueError, InvalidOperation):
        raise UsageError(f"{flag}: expected COLUMN=NUMBER, got {value!r}") from None
    return column.strip(), format(exact, "f")


def glob_to_like(pattern: str) -> str:
    """A shell-style pattern (`dedup:*`) as SQL LIKE (`dedup:%`), LIKE's own marks escaped."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def reason_test(patterns: list[str]) -> str:
    """The row's fate matches one of the patterns over `reason`; `kept` = a kept row. Plain
    comparisons where the patterns allow (DuckDB pushes them into the Parquet scan)."""
    exact = [p for p in patterns if p != KEPT and not any(c in p for c in "*?")]
    tests = [f"status = {quote_text(KEPT)}"] if KEPT in patterns else []
    if "*" in patterns:  # every row, the kept ones (whose reason is NULL) included
        return "true"
    if exact:
        tests.append(f"reason IN ({', '.join(quote_text(p) for p in exact)})")
    for pattern in patterns:
        if pattern != KEPT and pattern not in exact:
            head = pattern[:-1]
            tests.append(f"starts_with(reason, {quote_text(head)})" if pattern.endswith("*") and not any(
                c in head for c in "*?") else f"reason LIKE {quote_text(glob_to_like(pattern))} ESCAPE '\\'")
    return " OR ".join(tests)


def build_cuts(ledger: Ledger, where=(), keep_fraction=(), minimum=(), maximum=(), language=(), reason=None,
               uid_column: str = "uid") -> tuple[list, list[Fraction]]:
    """Named cuts and expressions -> checked Cuts, with Fractions where thresholds are still to find
    (UsageError naming the flag when one is bad), in the order the summary lists them."""
    cuts: list = [ledger.test(text, "--where") for text in where]
    fractions = []
    for value in keep_fraction:
        column, number = _pair(value, "--keep_fraction")
        fraction = float(number)
        if not 0 < fraction <= 1:
            raise UsageError(f"--keep_fraction: the fraction must be in (0, 1], got {fraction:g}")
        ledger.has(column, "--keep_fraction")
        if ledger.types[column] not in FLOAT_TYPES:
            raise UsageError(f"--keep_fraction: {column} is {ledger.types[column]}, not a score (float) column")
        pool = " AND ".join(f"{quote_name(c)} IS NOT NULL"
                            for c in dict.fromkeys([*score_columns(ledger.types), column]))
        fractions.append(Fraction(column, fraction, pool))
        cuts.append(fractions[-1])
    for values, op, flag in ((minimum, ">=", "--min"), (maximum, "<=", "--max")):
        for value in values:
            column, number = _pair(value, flag)
            ledger.has(column, flag)
            tested = ledger.test(f"{quote_name(column)} {op} {number}", flag)
            cuts.append(Cut(f"{column} {op} {number}", tested.sql))
    if language:
        ledger.has(LANGUAGE, "--language")
        listed = ", ".join(quote_text(code) for code in language)
        cuts.append(Cut(f"{LANGUAGE} in ({listed})", ledger.test(f"{quote_name(LANGUAGE)} IN ({listed})",
                                                                  "--language").sql))
    patterns = list(reason) if reason else list(DEFAULT_REASONS)
    cuts.append(Cut("reason in " + " | ".join(patterns), ledger.test(reason_test(patterns), "--reason").sql))
    ledger.has(uid_column, "--uid_column")
    return cuts, fractions


def score_range(con: duckdb.DuckDBPyConnection, files: list[str], cut: Fraction) -> tuple[float, float] | None:
    """(min, max) of the score over the ledger: the parts' statistics, else a pass over the pool;
    None when the pool is empty."""
    found = column_range(con, files, cut.column, "FLOAT")
    if found is None:
        found = con.execute(f"SELECT min({cut.score})::DOUBLE, max({cut.score})::DOUBLE "
                            f"FROM ledger WHERE {cut.pool}").fetchall()[0]
    return None if found[0] is None else found


def find_threshold(con: duckdb.DuckDBPyConnection, files: list[str], cut: Fraction) -> dict:
    """The k-th best score of the pool, exactly, in bounded memory (see the module docstring):
    the pool counted in BINS bins of its range, then the one bin holding the k-th counted per
    distinct score (a bin's worth of rows). Its facts include `at_or_above`, the pool's rows at or
    above the threshold (ties kept): the rows the cut selects."""
    span = score_range(con, files, cut)
    scale = (BINS - 1) / (span[1] - span[0]) if span and span[1] > span[0] else 0.0
    scale = scale if math.isfinite(scale) else 0.0  # a range too narrow to divide: one bin
    low = span[0] if span else 0.0
    # monotone in the score: IEEE subtraction and multiplication by a positive number keep order
    bin_of = (f"CAST(greatest(0, least({BINS - 1}, floor(({cut.score}::DOUBLE - CAST({quote_text(repr(low))} AS DOUBLE))"
              f" * CAST({quote_text(repr(scale))} AS DOUBLE)))) AS INTEGER)")
    pool = f"FROM ledger WHERE {cut.pool}"
    counted = con.execute(f"SELECT {bin_of} AS b, count(*) AS n {pool} GROUP BY b").fetchnumpy()
    counts = np.zeros(BINS, np.int64)
    counts[np.asarray(counted["b"], np.int64)] = counted["n"]
    n = int(counts.sum())
    k = keep_count(cut.fraction, n)
    facts = {"keep_fraction": cut.fraction, "pool": n, "keep": k}
    if k == 0:  # nothing to keep (or an empty pool)
        return {**facts, "threshold": None}
    b, rank = locate_from_top(counts, k)
    above = int(counts[b + 1:].sum())
    for score, rows in con.execute(f"SELECT {cut.score}::DOUBLE AS s, count(*) {pool} AND {bin_of} = {b} "
                                   "GROUP BY s ORDER BY s DESC").fetchall():
        above += rows
        rank -= rows
        if rank <= 0:  # the k-th best; the rest of its ties are in `rows` too
            cut.threshold = score
            return {**facts, "threshold": score, "at_or_above": above}
    raise AssertionError("the bin holds fewer rows than it counted")


def count_rows(con: duckdb.DuckDBPyConnection, cuts: list, known: dict[int, int]) -> dict:
    """Rows, and the rows each cut selects (NULL is not selected): one filtered count each, which
    DuckDB answers reading little more than the columns the cut names; `known`: counts by cut
    index found already (a keep fraction's, by find_threshold)."""
    rows = con.execute("SELECT count(*) FROM ledger").fetchall()[0][0]
    matched = [known[i] if i in known else con.execute(f"SELECT count(*) FROM ledger WHERE ({c.sql}\n)").fetchall()[0][0]
               for i, c in enumerate(cuts)]
    return {"rows": rows, "matched": matched}


def write_selected(con: duckdb.DuckDBPyConnection, cuts: list, uid: str, to: str) -> dict:
    """The selected uids, unique and sorted, as a DataComp subset (written atomically).

    DuckDB groups and sorts them (spilling beyond its memory limit); the pairs stream out in
    batches to a temporary file, which then follows the .npy header: memory holds one batch.
    A value that is not a 32-hex uid is not written, and counted. Returns the counts.
    """
    valid = f"regexp_full_match({uid}, '[0-9a-fA-F]{{32}}')"  # evaluated on the selected rows only
    half = "CASE WHEN coalesce({valid}, false) THEN ('0x' || {uid}[{a}:{b}])::UBIGINT END"
    every = " AND ".join(f"({c.sql}\n)" for c in cuts)
    query = (f"SELECT f0, f1, count(*) AS n FROM (SELECT {half.format(valid=valid, uid=uid, a=1, b=16)} AS f0, "
             f"{half.format(valid=valid, uid=uid, a=17, b=32)} AS f1 FROM ledger WHERE {every}) "
             "GROUP BY ALL ORDER BY f0 NULLS LAST, f1")
    local_dir = os.path.dirname(os.path.abspath(to)) if "://" not in to else None
    if local_dir:
        os.makedirs(local_dir, exist_ok=True)
    counts = {"uids": 0, "selected_rows": 0, "valid_rows": 0, "bad_uids": 0}
    with tempfile.TemporaryFile(dir=local_dir) as body:
        for batch in con.sql(query).to_arrow_reader(1 << 20):
            f0, f1, n = (_numbers(batch.column(i)) for i in range(3))
            counts["selected_rows"] += int(n.sum())
            bad = batch.column(0).null_count  # only the last group: NULLS LAST
            if bad:
                counts["bad_uids"] += int(n[-1])
                f0, f1, n = f0[:-1], f1[:-1], n[:-1]
            pairs = np.empty(len(f0), DTYPE)
            pairs["f0"], pairs["f1"] = f0, f1
            body.write(pairs.tobytes())
            counts["uids"] += len(pairs)
            counts["valid_rows"] += int(n.sum())
        body.seek(0)
        with fs.atomic_write(to) as out:
            out.write(npy_header(counts["uids"]))
            shutil.copyfileobj(body, out, 1 << 22)
    return counts


def _numbers(column) -> np.ndarray:
    """An Arrow integer column's values as NumPy, zero-copy (nulls read as 0; callers drop them)."""
    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    kind = np.uint64 if str(column.type) == "uint64" else np.int64
    return np.frombuffer(column.buffers()[1], dtype=kind, count=len(column), offset=column.offset * 8)


def run_cut(source: str, to: str, summary_path: str | None = None, **named) -> dict:
    """Read the ledger, apply the cuts, write `to` (.npy) and its summary JSON; returns the summary."""
    started = time.time()
    ledger = Ledger(source)
    uid_column = named.pop("uid_column", "uid")
    cuts, _ = build_cuts(ledger, uid_column=uid_column, **named)
    found = {i: find_threshold(ledger.con, ledger.files, c) for i, c in enumerate(cuts) if isinstance(c, Fraction)}
    known = {i: facts["at_or_above"] for i, facts in found.items() if "at_or_above" in facts}
    at = {i: c for i, c in enumerate(cuts) if isinstance(c, Fraction)}
    cuts = [c.cut() if isinstance(c, Fraction) else c for c in cuts]
    uid = quote_name(uid_column)
    try:
        counts = count_rows(ledger.con, cuts, known)
        written = write_selected(ledger.con, cuts, uid, to)
    except duckdb.Error as e:  # a value the test cannot convert (`CAST(caption AS INT) > 3`)
        raise UsageError(f"cut: {first_line(e)}") from None
    thresholds = {}
    for i, fraction in at.items():  # at_or_above: the pool's rows at or above the threshold, the cut's rows
        thresholds[fraction.column] = {**found[i], "at_or_above": counts["matched"][i]}
    summary = {"ledger": source, "ledger_parts": len(ledger.files), "output": to, "uid_column": uid_column,
               "rows": counts["rows"], "selected_rows": written["selected_rows"], "uids": written["uids"],
               "repeated_uids": written["valid_rows"] - written["uids"], "bad_uids": written["bad_uids"],
               "cuts": [{"cut": c.text, "rows": n} for c, n in zip(cuts, counts["matched"])],
               "keep_fraction": thresholds, "wall_time_s": round(time.time() - started, 3)}
    fs.write_bytes(summary_path or summary_file(to), json.dumps(summary, indent=2).encode())
    return summary


def summary_file(npy_path: str) -> str:
    root = npy_path[:-4] if npy_path.endswith(".npy") else npy_path
    return root + ".json"
