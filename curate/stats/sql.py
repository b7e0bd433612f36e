"""The statistics' queries: fixed-bin histograms and counts that DuckDB computes over `ledger`.

A histogram here is numpy's: values in [edges[0], edges[-1]] fall in bin i when
edges[i] <= x < edges[i+1] (the last bin also holds edges[-1]), values below and above are
counted apart, non-finite values (NULL, NaN, inf) are left out. DuckDB finds the bin from the
uniform width, then corrects it by one against the actual edges (passed exactly, as text
parsed to DOUBLE), so a value on an edge lands where numpy puts it. One query fills the
histograms of several row groups (all rows, kept rows, ...) in one pass.
"""
from __future__ import annotations

from collections import Counter

import duckdb
import numpy as np

from curate.ledger.expression import quote_text
from curate.stats.histogram import Histogram


def double(value: float) -> str:
    """A float as an exact SQL DOUBLE (repr round-trips; a bare decimal literal would be a DECIMAL)."""
    return f"CAST({quote_text(repr(float(value)))} AS DOUBLE)"


def bin_of(x: str, guess: str, edges: np.ndarray) -> tuple[str, str]:
    """SQL: (the uniform-width guess at `x`'s bin, and numpy's bin of `x` given that guess in a
    column named `guess`: 0..n-1, -1 below the first edge, n above the last). The guess is computed
    in a layer of its own: DuckDB would compute it again in each use."""
    edges = np.asarray(edges, dtype=np.float64)
    n = len(edges) - 1
    listed = f"CAST({quote_text('[' + ', '.join(repr(float(e)) for e in edges) + ']')} AS DOUBLE[])"
    width = (edges[-1] - edges[0]) / n
    first = f"least({n - 1}, greatest(0, CAST(floor(({x} - {double(edges[0])}) / {double(width)}) AS BIGINT)))"
    exact = (f"{guess} - CAST({x} < {listed}[{guess} + 1] AS BIGINT) "
             f"+ CAST({guess} < {n - 1} AND {x} >= {listed}[{guess} + 2] AS BIGINT)")
    return first, f"CASE WHEN {x} < {double(edges[0])} THEN -1 WHEN {x} > {double(edges[-1])} THEN {n} ELSE {exact} END"


def histograms(con: duckdb.DuckDBPyConnection, value: str, edges, groups: dict[str, str],
               where: str = "true", source: str = "ledger") -> dict[str, Histogram]:
    """One Histogram(edges) per named row condition (SQL; NULL counts as false) of the finite
    values of `value` over `source` rows where `where` holds."""
    names = list(groups)
    marks = ", ".join(f"({groups[g]}) AS g{i}" for i, g in enumerate(names))
    per_group = ", ".join(f"count_if(g{i}), sum(x) FILTER (WHERE g{i}), min(x) FILTER (WHERE g{i}), "
                          f"max(x) FILTER (WHERE g{i})" for i in range(len(names)))
    first, exact = bin_of("x", "guess", edges)
    rows = con.execute(
        f"SELECT b, {per_group} FROM (SELECT *, {exact} AS b FROM (SELECT *, {first} AS guess FROM "
        f"(SELECT CAST(({value}) AS DOUBLE) AS x, {marks} FROM {source} WHERE {where}) WHERE isfinite(x))) "
        "GROUP BY b").fetchall()
    out = {}
    for i, name in enumerate(names):
        histogram = Histogram(edges)
        for row in rows:
            b, count, total, low, high = row[0], *row[1 + 4 * i:5 + 4 * i]
            if not count:
                continue
            if b < 0:
                histogram.under += count
            elif b >= len(histogram.counts):
                histogram.over += count
            else:
                histogram.counts[b] += count
            histogram.total += total
            histogram.low, histogram.high = min(histogram.low, low), max(histogram.high, high)
        out[name] = histogram
    return out


def value_counts(con: duckdb.DuckDBPyConnection, key: str, where: str = "true", source: str = "ledger") -> Counter:
    """{value: rows} of a SQL expression over the rows where it is not NULL."""
    rows = con.execute(f"SELECT k, count(*) FROM (SELECT ({key}) AS k FROM {source} WHERE {where}) "
                       "WHERE k IS NOT NULL GROUP BY k").fetchall()
    return Counter(dict(rows))


def one_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return con.execute(sql).fetchall()[0]
