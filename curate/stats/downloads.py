"""Download outcomes: errors by reason and by host, attempts, bytes, time.

A row was fetched (or tried) when the download stage recorded `download_attempts` for it or
dropped it with a `download:` reason; its host is the URL's (lowercased, port dropped). Hosts
are counted exactly: DuckDB finds each attempted row's host and groups the rows by (host,
failure reason), so only one row per host and reason comes back. `with_host` is the regular
expression's capture; for the common `http(s)://host[:port]/...` it is read with string
functions, which cost DuckDB a third of the expression (tests/test_stats_sql.py checks both).
"""
from __future__ import annotations

import duckdb
import pandas as pd

from curate.ledger.expression import quote_text
from curate.stats.histogram import Counts, Histogram
from curate.stats.sql import histograms

PREFIX = "download:"
ATTEMPTS, BYTES, ELAPSED, FROM_CACHE = "download_attempts", "download_bytes", "download_elapsed_s", "download_from_cache"
HOST_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)"  # group 1: the host
NO_HOST = "(no host)"
ELAPSED_EDGES = Histogram.linear(0, 120, 0.5).edges
ATTEMPT_EDGES = Histogram.linear(0.5, 10.5, 1).edges


def with_host(rows: str) -> str:
    """SQL: the rows of the query `rows` (a VARCHAR column `u`, the URL; more may follow) with
    `host`: HOST_PATTERN's capture, lowercased, or NO_HOST where the pattern does not match."""
    # `http(s)://authority/...`: the authority is the third '/'-part, up to '?' or '#' (computed once,
    # in a layer of its own; DuckDB would compute it again in each branch below)
    split = (f"SELECT *, (starts_with(u, 'http://') OR starts_with(u, 'https://')) AS web, "
             f"split_part(split_part(split_part(u, '/', 3), '?', 1), '#', 1) AS authority FROM ({rows})")
    pattern = quote_text(HOST_PATTERN)
    return ("SELECT *, CASE WHEN web AND strpos(authority, '@') = 0 AND NOT starts_with(authority, '[') "
            "THEN lower(split_part(authority, ':', 1)) "  # no user info, no [IPv6]: the pattern's capture
            f"WHEN regexp_matches(u, {pattern}) THEN lower(regexp_extract(u, {pattern}, 1)) "
            f"ELSE {quote_text(NO_HOST)} END AS host FROM ({split})")


class Downloads:
    def __init__(self):
        self.reasons = Counts()
        self.attempted_by_host = pd.Series(dtype="int64")  # host -> URLs tried
        self.failed_by_host_reason = pd.DataFrame(columns=["host", "reason", "n"])
        self.attempted = 0
        self.from_cache = 0
        self.bytes = 0
        self.elapsed = Histogram(ELAPSED_EDGES)
        self.attempts = Histogram(ATTEMPT_EDGES)

    @staticmethod
    def applies(available: list[str], reasons: list[str]) -> bool:
        return ATTEMPTS in available or any(r.startswith(PREFIX) for r in reasons)

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, types: dict[str, str]) -> "Downloads":
        out = cls()
        failed = f"starts_with(coalesce(reason, ''), '{PREFIX}')"
        tried = failed + (f" OR coalesce({ATTEMPTS} > 0, false)" if ATTEMPTS in types else "")
        cached = f"CAST({FROM_CACHE} AS BIGINT)" if FROM_CACHE in types else "0"
        received = BYTES if BYTES in types else "0"
        rows = (f"SELECT coalesce(url, '') AS u, CASE WHEN {failed} THEN reason END AS failure, {cached} AS cached, "
                f"{received} AS received FROM ledger WHERE {tried}")
        groups = con.execute(f"SELECT host, failure, count(*) AS n, coalesce(sum(cached), 0) AS cached, "
                             f"coalesce(sum(received), 0) AS received FROM ({with_host(rows)}) GROUP BY ALL").df()
        out.attempted = int(groups["n"].sum())
        out.from_cache, out.bytes = int(groups["cached"].sum()), int(groups["received"].sum())
        out.attempted_by_host = groups.groupby("host")["n"].sum().astype("int64")
        failures = groups[groups["failure"].notna()].rename(columns={"failure": "reason"})
        out.failed_by_host_reason = failures[["host", "reason", "n"]].reset_index(drop=True)
        out.reasons.add(failures.groupby("reason")["n"].sum().to_dict())
        if ELAPSED in types:
            out.elapsed = histograms(con, ELAPSED, ELAPSED_EDGES, {"all": "true"}, tried)["all"]
        if ATTEMPTS in types:
            out.attempts = histograms(con, ATTEMPTS, ATTEMPT_EDGES, {"all": "true"}, tried)["all"]
        return out

    # -- results -----------------------------------------------------------------------------
    def summary(self) -> dict:
        failed = self.reasons.n
        return {"attempted": self.attempted, "ok": self.attempted - failed, "failed": failed,
                "failure_rate": failed / self.attempted if self.attempted else float("nan"),
                "from_cache": self.from_cache, "bytes_received": self.bytes,
                "hosts": len(self.attempted_by_host),
                "elapsed_median_s": self.elapsed.quantile(0.5), "elapsed_p95_s": self.elapsed.quantile(0.95),
                "mean_attempts": self.attempts.mean}

    def by_reason(self) -> pd.DataFrame:
        frame = self.reasons.top(name="reason")
        frame["share_of_attempted"] = frame["count"] / max(self.attempted, 1)
        return frame.drop(columns="share")

    def by_host(self, top: int = 20) -> pd.DataFrame:
        """The hosts with the most failures: attempted, failed, failure rate, their main reason."""
        failures = self.failed_by_host_reason
        columns = ["host", "attempted", "failed", "failure_rate", "main_reason"]
        if failures.empty:
            return pd.DataFrame(columns=columns)
        main = failures.sort_values(["n", "reason"], ascending=[False, True]).drop_duplicates("host")
        frame = failures.groupby("host", as_index=False)["n"].sum().rename(columns={"n": "failed"})
        frame = frame.merge(main[["host", "reason"]].rename(columns={"reason": "main_reason"}), on="host")
        frame = frame.sort_values(["failed", "host"], ascending=[False, True]).head(top)
        frame["attempted"] = frame["host"].map(self.attempted_by_host).astype("int64")
        frame["failure_rate"] = frame["failed"] / frame["attempted"]
        return frame[columns].reset_index(drop=True)

    def host_reason_matrix(self, top_hosts: int = 15, top_reasons: int = 8) -> pd.DataFrame:
        """Failures per (host, reason) for the worst hosts and commonest reasons (for a heatmap)."""
        hosts_ = list(self.by_host(top_hosts)["host"])
        reasons = list(self.reasons.top(top_reasons, name="reason")["reason"])
        reasons = [r for r in reasons if not r.startswith("(other")]
        pairs = {(h, r): n for h, r, n in self.failed_by_host_reason.itertuples(index=False)}
        data = [[pairs.get((h, r), 0) for r in reasons] for h in hosts_]
        return pd.DataFrame(data, index=pd.Index(hosts_, name="host"), columns=reasons)
