"""Download outcomes: errors by reason and by host, attempts, bytes, time.

A row was fetched (or tried) when the download stage recorded `download_attempts` for it or
dropped it with a `download:` reason; its host is the URL's (lowercased, port dropped). Hosts
are counted exactly: millions of hosts fit in memory, billions of rows need `parts=`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curate.stats.histogram import Counts, Histogram, KeyCounts

PREFIX = "download:"
ATTEMPTS, BYTES, ELAPSED, FROM_CACHE = "download_attempts", "download_bytes", "download_elapsed_s", "download_from_cache"
_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(?P<host>\[[^\]]*\]|[^:/?#]*)"


def hosts(urls: pa.Array) -> pa.Array:
    found = pc.extract_regex(urls.fill_null(""), _HOST)
    return pc.utf8_lower(pc.struct_field(found, "host")).fill_null("(no host)")


def attempted_mask(table: pa.Table) -> np.ndarray:
    reason = table.column("reason").fill_null("")
    mask = pc.starts_with(reason, PREFIX)
    if ATTEMPTS in table.column_names:
        mask = pc.or_(mask, pc.fill_null(pc.greater(table.column(ATTEMPTS), 0), False))
    return mask.to_numpy(zero_copy_only=False)


class Downloads:
    def __init__(self):
        self.reasons = Counts()
        self.attempted_by_host = KeyCounts(("host",))
        self.failed_by_host_reason = KeyCounts(("host", "reason"))
        self.attempted = 0
        self.from_cache = 0
        self.bytes = 0
        self.elapsed = Histogram.linear(0, 120, 0.5)
        self.attempts = Histogram.linear(0.5, 10.5, 1)

    @staticmethod
    def applies(available: list[str], reasons: list[str]) -> bool:
        return ATTEMPTS in available or any(r.startswith(PREFIX) for r in reasons)

    @staticmethod
    def columns(available: list[str]) -> list[str]:
        return ["url", "reason", ATTEMPTS, BYTES, ELAPSED, FROM_CACHE]

    def add(self, table: pa.Table) -> None:
        mask = attempted_mask(table)
        if not mask.any():
            return
        table = table.filter(pa.array(mask))
        reason = table.column("reason").fill_null("")
        failed = pc.starts_with(reason, PREFIX)
        keys = pa.table({"host": hosts(table.column("url")), "reason": reason})
        self.attempted += table.num_rows
        self.attempted_by_host.add(keys)
        self.failed_by_host_reason.add(keys.filter(failed))
        self.reasons.add({r["values"]: r["counts"] for r in reason.filter(failed).value_counts().to_pylist()})
        names = table.column_names
        if FROM_CACHE in names:
            self.from_cache += int(pc.sum(pc.cast(table.column(FROM_CACHE).fill_null(False), pa.int64())).as_py() or 0)
        if BYTES in names:
            self.bytes += int(pc.sum(table.column(BYTES)).as_py() or 0)
        if ELAPSED in names:
            self.elapsed.add(table.column(ELAPSED).to_numpy(zero_copy_only=False))
        if ATTEMPTS in names:
            self.attempts.add(table.column(ATTEMPTS).to_numpy(zero_copy_only=False))

    def merge(self, other: "Downloads") -> "Downloads":
        self.attempted_by_host.merge(other.attempted_by_host)
        self.failed_by_host_reason.merge(other.failed_by_host_reason)
        self.reasons.merge(other.reasons)
        self.attempted += other.attempted
        self.from_cache += other.from_cache
        self.bytes += other.bytes
        self.elapsed.merge(other.elapsed)
        self.attempts.merge(other.attempts)
        return self

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
        failures = self.failed_by_host_reason.table().to_pandas()
        columns = ["host", "attempted", "failed", "failure_rate", "main_reason"]
        if failures.empty:
            return pd.DataFrame(columns=columns)
        main = failures.sort_values(["n", "reason"], ascending=[False, True]).drop_duplicates("host")
        frame = failures.groupby("host", as_index=False)["n"].sum().rename(columns={"n": "failed"})
        frame = frame.merge(main[["host", "reason"]].rename(columns={"reason": "main_reason"}), on="host")
        frame = frame.sort_values(["failed", "host"], ascending=[False, True]).head(top)
        attempted = self.attempted_by_host.table().to_pandas().set_index("host")["n"]
        frame["attempted"] = frame["host"].map(attempted).astype("int64")
        frame["failure_rate"] = frame["failed"] / frame["attempted"]
        return frame[columns].reset_index(drop=True)

    def host_reason_matrix(self, top_hosts: int = 15, top_reasons: int = 8) -> pd.DataFrame:
        """Failures per (host, reason) for the worst hosts and commonest reasons (for a heatmap)."""
        hosts_ = list(self.by_host(top_hosts)["host"])
        reasons = list(self.reasons.top(top_reasons, name="reason")["reason"])
        reasons = [r for r in reasons if not r.startswith("(other")]
        pairs = self.failed_by_host_reason.to_dict()
        data = [[pairs.get((h, r), 0) for r in reasons] for h in hosts_]
        return pd.DataFrame(data, index=pd.Index(hosts_, name="host"), columns=reasons)
