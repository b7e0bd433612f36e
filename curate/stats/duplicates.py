"""Duplicate clusters: how many samples share one image, and what the dedup stage dropped.

Two views. Exact duplicates read off the ledger's `sha256` (same image bytes), whatever stage
dropped them. And the dedup stage's own decisions: each sample it dropped names the kept sample
it duplicates (`dedup_keeper`) and how close it was (`dedup_distance`), so a cluster is a keeper
plus the samples that lost to it. Counts are exact over the rows read (a key per distinct value
in memory: use `parts=` on very large runs, which undercounts clusters that span parts).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curate.stats.histogram import Counts, Histogram, KeyCounts

PREFIX = "dedup:"
KEEPER, DISTANCE = "dedup_keeper", "dedup_distance"
EXACT_KEY = "sha256"


def distance_histogram(reason: str) -> Histogram:
    """pHash distances are Hamming bits (0-64); SemDeDup's are cosine distances (0-2)."""
    return Histogram.linear(0, 2, 0.0025) if "semantic" in reason else Histogram.linear(0, 64, 1)


class Duplicates:
    def __init__(self, has_sha256: bool, has_keeper: bool):
        self.keys = ([EXACT_KEY] if has_sha256 else []) + ([KEEPER] if has_keeper else [])
        self.members = {k: KeyCounts((k,)) for k in self.keys}  # key value -> samples
        self.reasons = Counts()
        self.distances: dict[str, Histogram] = {}  # dedup reason -> distances of its drops

    @staticmethod
    def applies(available: list[str]) -> bool:
        return EXACT_KEY in available or KEEPER in available

    @classmethod
    def for_columns(cls, available: list[str]) -> "Duplicates":
        return cls(EXACT_KEY in available, KEEPER in available)

    @staticmethod
    def columns(available: list[str]) -> list[str]:
        return ["reason", EXACT_KEY, KEEPER, DISTANCE]

    def add(self, table: pa.Table) -> None:
        reason = table.column("reason").fill_null("")
        is_dedup = pc.starts_with(reason, PREFIX)
        dedup = reason.filter(is_dedup)
        if len(dedup):
            self.reasons.add({r["values"]: r["counts"] for r in dedup.value_counts().to_pylist()})
        for key, members in self.members.items():
            members.add(table.select([key]).filter(table.column(key).is_valid()))
        if KEEPER in self.members:
            if DISTANCE in table.column_names and len(dedup):
                self._add_distances(table.filter(is_dedup))

    def _add_distances(self, dropped: pa.Table) -> None:
        reasons = dropped.column("reason").to_numpy(zero_copy_only=False)
        distances = dropped.column(DISTANCE).to_numpy(zero_copy_only=False).astype(np.float64)
        for reason in np.unique(reasons):
            if reason not in self.distances:
                self.distances[reason] = distance_histogram(reason)
            self.distances[reason].add(distances[reasons == reason])

    def merge(self, other: "Duplicates") -> "Duplicates":
        for key, members in other.members.items():
            self.members[key].merge(members)
        self.reasons.merge(other.reasons)
        for reason, histogram in other.distances.items():
            if reason in self.distances:
                self.distances[reason].merge(histogram)
            else:
                self.distances[reason] = histogram
        return self

    def _sizes(self, key: str) -> Counter:
        """cluster size -> clusters. A keeper's cluster is the keeper plus the samples that lost to it."""
        extra = 1 if key == KEEPER else 0
        sizes, clusters = np.unique(self.members[key].counts() + extra, return_counts=True)
        return Counter(dict(zip(sizes.tolist(), clusters.tolist())))

    def cluster_sizes(self, key: str) -> pd.DataFrame:
        """size -> how many clusters have it and how many samples they hold."""
        frame = pd.DataFrame(sorted(self._sizes(key).items()), columns=["size", "clusters"])
        frame["samples"] = frame["size"] * frame["clusters"]
        frame["share_of_samples"] = frame["samples"] / max(int(frame["samples"].sum()), 1)
        return frame

    def summary(self) -> pd.DataFrame:
        """Per key: samples, clusters, how many are duplicated. Keeper clusters hold only the samples
        dedup judged duplicates (and their keepers): the unique samples are not counted there."""
        rows = []
        for key in self.keys:
            sizes = self._sizes(key)
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
