"""Duplicate clusters: how many samples share one image, and what the dedup stage dropped.

Exact duplicates are read off the ledger's `sha256` (same image bytes); a dedup stage's own
cluster id column, when the ledger has one, is counted the same way. Cluster sizes are exact
over the rows read (a key per distinct image in memory; use `parts=` on very large runs, which
undercounts clusters that span parts).
"""
from __future__ import annotations

from collections import Counter

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curate.stats.histogram import Counts

PREFIX = "dedup:"
CLUSTER_COLUMNS = ("sha256", "dedup_cluster", "phash_cluster", "semantic_cluster")


class Duplicates:
    def __init__(self, keys: list[str]):
        self.keys = keys  # the cluster key columns present in the ledger
        self.members = {k: Counter() for k in keys}
        self.reasons = Counts()

    @staticmethod
    def find(available: list[str]) -> list[str]:
        return [c for c in CLUSTER_COLUMNS if c in available]

    def columns(self, available: list[str]) -> list[str]:
        return ["reason", *self.keys]

    def add(self, table: pa.Table) -> None:
        reason = table.column("reason").fill_null("")
        dedup = reason.filter(pc.starts_with(reason, PREFIX))
        if len(dedup):
            self.reasons.add({r["values"]: r["counts"] for r in dedup.value_counts().to_pylist()})
        for key in self.keys:
            counts = table.column(key).drop_null().value_counts().to_pylist()
            self.members[key].update({c["values"]: c["counts"] for c in counts})

    def merge(self, other: "Duplicates") -> "Duplicates":
        for key, counter in other.members.items():
            self.members[key].update(counter)
        self.reasons.merge(other.reasons)
        return self

    def cluster_sizes(self, key: str) -> pd.DataFrame:
        """size -> how many clusters have it and how many samples they hold."""
        sizes = Counter(self.members[key].values())
        frame = pd.DataFrame(sorted(sizes.items()), columns=["size", "clusters"])
        frame["samples"] = frame["size"] * frame["clusters"]
        frame["share_of_samples"] = frame["samples"] / max(int(frame["samples"].sum()), 1)
        return frame

    def summary(self) -> pd.DataFrame:
        rows = []
        for key, counter in self.members.items():
            samples = sum(counter.values())
            duplicated = sum(n for n in counter.values() if n > 1)
            rows.append({"key": key, "samples": samples, "clusters": len(counter),
                         "samples_in_clusters_of_2_or_more": duplicated,
                         "share_duplicated": duplicated / samples if samples else float("nan"),
                         "largest_cluster": max(counter.values(), default=0),
                         "redundant_samples": samples - len(counter)})
        return pd.DataFrame(rows, columns=["key", "samples", "clusters", "samples_in_clusters_of_2_or_more",
                                           "share_duplicated", "largest_cluster", "redundant_samples"])
