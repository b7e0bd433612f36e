"""Duplicate clusters: how many samples share one image, and what the dedup stage dropped.

Two views. Exact duplicates read off the ledger's `sha256` (same image bytes), whatever stage
dropped them. And the dedup stage's own decisions: each sample it dropped names the kept sample
it duplicates (`dedup_keeper`) and how close it was (`dedup_distance`), so a cluster is a keeper
plus the samples that lost to it. Counts are exact over the rows read: DuckDB groups the rows
by key (spilling to disk past its memory limit) and returns only how many clusters have each size.
"""
from __future__ import annotations

from collections import Counter

import duckdb
import pandas as pd

from curate.ledger.expression import quote_name, quote_text
from curate.stats.histogram import Counts, Histogram
from curate.stats.sql import histograms, value_counts

PREFIX = "dedup:"
KEEPER, DISTANCE = "dedup_keeper", "dedup_distance"
EXACT_KEY = "sha256"


def distance_histogram(reason: str) -> Histogram:
    """pHash distances are Hamming bits (0-64); SemDeDup's are cosine distances (0-2)."""
    return Histogram.linear(0, 2, 0.0025) if "semantic" in reason else Histogram.linear(0, 64, 1)


class Duplicates:
    def __init__(self, has_sha256: bool, has_keeper: bool):
        self.keys = ([EXACT_KEY] if has_sha256 else []) + ([KEEPER] if has_keeper else [])
        self.sizes: dict[str, Counter] = {k: Counter() for k in self.keys}  # key -> {cluster size: clusters}
        self.reasons = Counts()
        self.distances: dict[str, Histogram] = {}  # dedup reason -> distances of its drops

    @staticmethod
    def applies(available: list[str]) -> bool:
        return EXACT_KEY in available or KEEPER in available

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, types: dict[str, str]) -> "Duplicates":
        out = cls(EXACT_KEY in types, KEEPER in types)
        for key in out.keys:
            extra = 1 if key == KEEPER else 0  # a keeper's cluster is the keeper plus the samples that lost to it
            rows = con.execute(f"SELECT n + {extra}, count(*) FROM (SELECT count(*) AS n FROM ledger "
                               f"WHERE {quote_name(key)} IS NOT NULL GROUP BY {quote_name(key)}) GROUP BY 1").fetchall()
            out.sizes[key] = Counter(dict(rows))
        dedup = f"starts_with(coalesce(reason, ''), '{PREFIX}')"
        out.reasons.add(value_counts(con, "reason", dedup))
        if KEEPER in types and DISTANCE in types:
            for reason in sorted(out.reasons.counter):
                out.distances[reason] = histograms(con, quote_name(DISTANCE), distance_histogram(reason).edges,
                                                   {"all": "true"}, f"reason = {quote_text(reason)}")["all"]
        return out

    def clusters(self, key: str) -> int:
        return sum(self.sizes[key].values())

    def cluster_sizes(self, key: str) -> pd.DataFrame:
        """size -> how many clusters have it and how many samples they hold."""
        frame = pd.DataFrame(sorted(self.sizes[key].items()), columns=["size", "clusters"])
        frame["samples"] = frame["size"] * frame["clusters"]
        frame["share_of_samples"] = frame["samples"] / max(int(frame["samples"].sum()), 1)
        return frame

    def summary(self) -> pd.DataFrame:
        """Per key: samples, clusters, how many are duplicated. Keeper clusters hold only the samples
        dedup judged duplicates (and their keepers): the unique samples are not counted there."""
        rows = []
        for key in self.keys:
            sizes = self.sizes[key]
            samples = sum(size * n for size, n in sizes.items())
            clusters = sum(sizes.values())
            duplicated = sum(size * n for size, n in sizes.items() if size > 1)
            share = duplicated / samples if samples and key != KEEPER else float("nan")
            rows.append({"key": key, "samples": samples, "clusters": clusters,
                         "samples_in_clusters_of_2_or_more": duplicated, "share_duplicated": share,
                         "largest_cluster": max(sizes, default=0), "redundant_samples": samples - clusters})
        return pd.DataFrame(rows, columns=["key", "samples", "clusters", "samples_in_clusters_of_2_or_more",
                                           "share_duplicated", "largest_cluster", "redundant_samples"])

    def distance_summary(self) -> pd.DataFrame:
        rows = [{"reason": reason, "dropped": h.n, "distance_median": h.quantile(0.5),
                 "distance_p95": h.quantile(0.95), "distance_max": h.high}
                for reason, h in sorted(self.distances.items()) if h.n]
        return pd.DataFrame(rows, columns=["reason", "dropped", "distance_median", "distance_p95", "distance_max"])
