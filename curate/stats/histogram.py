"""Fixed-bin histograms and counters: what the statistics' queries return (curate.stats.sql).

Bins are fixed in advance (not derived from the data) so DuckDB can count a billion rows into
them in one grouped pass (and histograms of parts add up, in any order); quantiles read from
one are within one bin width of the empirical CDF's inverse. Exact min, max, mean and count
ride along.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class Histogram:
    edges: np.ndarray  # ascending; values below the first edge or above the last count as under/over
    counts: np.ndarray = None
    under: int = 0
    over: int = 0
    total: float = 0.0
    low: float = np.inf
    high: float = -np.inf

    def __post_init__(self):
        self.edges = np.asarray(self.edges, dtype=np.float64)
        if self.counts is None:
            self.counts = np.zeros(len(self.edges) - 1, dtype=np.int64)

    @classmethod
    def linear(cls, start: float, stop: float, width: float) -> "Histogram":
        return cls(np.linspace(start, stop, int(round((stop - start) / width)) + 1))

    @property
    def n(self) -> int:
        return int(self.counts.sum()) + self.under + self.over

    def add(self, values) -> "Histogram":
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if not values.size:
            return self
        self.under += int((values < self.edges[0]).sum())
        self.over += int((values > self.edges[-1]).sum())
        self.counts += np.histogram(values, self.edges)[0]
        self.total += float(values.sum())
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))
        return self

    def merge(self, other: "Histogram") -> "Histogram":
        assert np.array_equal(self.edges, other.edges), "histograms with different bins"
        self.counts = self.counts + other.counts
        self.under += other.under
        self.over += other.over
        self.total += other.total
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)
        return self

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")

    def quantile(self, q: float) -> float:
        """The q-quantile (the empirical CDF's inverse) to one bin width; linear inside the bin."""
        n = self.n
        if not n:
            return float("nan")
        target = q * n
        cumulative = self.under + np.cumsum(self.counts)
        if target <= self.under:
            return self.low
        i = int(np.searchsorted(cumulative, target))
        if i >= len(self.counts):
            return self.high
        before = cumulative[i] - self.counts[i]
        inside = (target - before) / self.counts[i] if self.counts[i] else 0.0
        value = self.edges[i] + inside * (self.edges[i + 1] - self.edges[i])
        return float(min(max(value, self.low), self.high))

    def share_below(self, x: float) -> float:
        """Share of values below x, exact when x is a bin edge."""
        n = self.n
        if not n:
            return float("nan")
        i = int(np.searchsorted(self.edges, x, side="left"))
        return (self.under + int(self.counts[:i].sum())) / n

    def summary(self) -> dict:
        return {"count": self.n, "mean": self.mean, "min": self.low if self.n else float("nan"),
                "p05": self.quantile(0.05), "p25": self.quantile(0.25), "median": self.quantile(0.5),
                "p75": self.quantile(0.75), "p95": self.quantile(0.95),
                "max": self.high if self.n else float("nan")}

    def to_frame(self, trim: bool = True) -> pd.DataFrame:
        """Bins (left, right, count); empty bins at both ends trimmed; under/over as open bins."""
        left, right, counts = list(self.edges[:-1]), list(self.edges[1:]), list(self.counts)
        if self.under:
            left, right, counts = [-np.inf, *left], [self.edges[0], *right], [self.under, *counts]
        if self.over:
            left, right, counts = [*left, self.edges[-1]], [*right, np.inf], [*counts, self.over]
        frame = pd.DataFrame({"left": left, "right": right, "count": counts})
        if trim and frame["count"].any():
            nonzero = np.flatnonzero(frame["count"].to_numpy())
            frame = frame.iloc[nonzero[0]:nonzero[-1] + 1]
        return frame.reset_index(drop=True)


@dataclass
class Counts:
    """A Counter of labels that merges; `top(n)` as a DataFrame with shares."""

    counter: Counter = field(default_factory=Counter)

    def add(self, values) -> "Counts":
        if isinstance(values, (dict, Counter)):
            self.counter.update(values)
        else:
            self.counter.update(pd.Series(values).dropna().value_counts().to_dict())
        return self

    def merge(self, other: "Counts") -> "Counts":
        self.counter.update(other.counter)
        return self

    @property
    def n(self) -> int:
        return sum(self.counter.values())

    def top(self, k: int | None = None, name: str = "value") -> pd.DataFrame:
        items = sorted(self.counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
        total = self.n
        rows = items[:k] if k else items
        frame = pd.DataFrame(rows, columns=[name, "count"])
        frame["share"] = frame["count"] / total if total else 0.0
        if k and len(items) > k:
            rest = sum(c for _, c in items[k:])
            frame.loc[len(frame)] = [f"(other {len(items) - k})", rest, rest / total]
        return frame
