"""Download outcomes: errors by reason and by host, attempts, bytes, time.

A row was fetched (or tried) when the download stage recorded `download_attempts` for it or
dropped it with a `download:` reason; its host is the URL's (lowercased, port dropped). Hosts
are counted exactly: DuckDB finds each attempted row's host and groups the rows by (host,
failure reason), so only one row per host and reason comes back. The host is the regular
expression's capture, found once per distinct authority of plain `http(s)://` URLs
(`host_groups`; tests/test_stats_sql.py checks it against the expression).
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


def host_groups(rows: str, keys: tuple[str, ...] = (), sums: tuple[str, ...] = ()) -> str:
    """SQL: the query `rows` (the URL as `u`, and the columns `keys` and `sums`) grouped by host
    (HOST_PATTERN's capture, lowercased; NO_HOST where it does not match) and `keys`, with
    `count(*) AS n` and the sum of each of `sums` under its name.

    A plain `http(s)://authority/...` URL is first grouped by its authority (the third '/'-part,
    no user info, no '['), whose host is read once per authority with string functions; the
    rest, few, get the pattern itself per URL. DuckDB's regular expression on every URL cost
    most of the statistics' time."""
    carried = "".join(f", {c}" for c in (*keys, *sums))
    authority = (f"SELECT CASE WHEN starts_with(u, 'http://') OR starts_with(u, 'https://') THEN split_part(u, '/', 3) "
                 f"END AS authority, u{carried} FROM ({rows})")
    plain = (f"SELECT CASE WHEN strpos(authority, '@') = 0 AND NOT starts_with(authority, '[') THEN authority END "
             f"AS plain, u{carried} FROM ({authority})")
    keyed = "".join(f", {c}" for c in keys)
    totals = "".join(f", coalesce(sum({c}), 0) AS {c}" for c in sums)
    grouped = (f"SELECT plain, CASE WHEN plain IS NULL THEN u END AS other{keyed}, count(*) AS n{totals} "
               f"FROM ({plain}) GROUP BY ALL")
    pattern = quote_text(HOST_PATTERN)
    hosted = ("SELECT CASE WHEN plain IS NOT NULL THEN lower(split_part(split_part(split_part(plain, '?', 1), '#', 1), "
              f"':', 1)) WHEN regexp_matches(other, {pattern}) THEN lower(regexp_extract(other, {pattern}, 1)) "
              f"ELSE {quote_text(NO_HOST)} END AS host{keyed}, n{''.join(f', {c}' for c in sums)} FROM ({grouped})")
    return (f"SELECT host{keyed}, sum(n) AS n{''.join(f', sum({c}) AS {c}' for c in sums)} FROM ({hosted}) "
            "GROUP BY ALL")


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
        groups = con.execute(host_groups(rows, ("failure",), ("cached", "received"))).df()
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
