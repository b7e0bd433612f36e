"""Distributions over samples: scores and their cut, image sizes and aspect, captions, language.

Each is a fixed-bin histogram (curate.stats.histogram) over every row that has the value and
again over the kept rows, so a plot shows what the curation did to the distribution.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curate.stats.histogram import Counts, Histogram

CUT_REASONS = ("score:below_threshold", "score:not_target_cluster")
MIN_SIDE, MAX_ASPECT = 200, 3.0  # DataComp's basic filter, drawn as reference lines
LANGUAGE_COLUMNS = ("language", "lang")


def kept_mask(table: pa.Table) -> pa.Array:
    return pc.fill_null(pc.equal(table.column("status"), "kept"), False)


SIGNAL_COLUMNS = ("nsfw_score", "aesthetic_score", "watermark_score", "text_area")  # curate.signals' columns
UNIT_SIGNALS = ("nsfw_score", "watermark_score", "text_area")  # probabilities and shares: [0, 1]


def score_columns(schema: pa.Schema) -> list[str]:
    """Numeric columns named `<role>_score` (clip_score, dfn_score, masked_clip_score, ...) or
    `score`; the image signals are apart (signal_columns)."""
    return [f.name for f in schema
            if (f.name.endswith("_score") or f.name == "score") and f.name != "language_score"
            and f.name not in SIGNAL_COLUMNS and (pa.types.is_floating(f.type) or pa.types.is_integer(f.type))]


def signal_columns(schema: pa.Schema) -> list[str]:
    """The image signals this ledger has (nsfw_score, aesthetic_score, watermark_score, text_area)."""
    return [c for c in SIGNAL_COLUMNS if c in schema.names]


def signal_edges(column: str, low: float, high: float) -> np.ndarray:
    """Probabilities and areas get 200 bins over [0, 1]; the aesthetic rating 400 over its range."""
    return np.linspace(0, 1, 201) if column in UNIT_SIGNALS else score_edges(low, high)


def signals(edges: dict[str, np.ndarray]) -> "Scores":
    """The signals' distributions over all rows, the kept rows and the rows a score cut dropped."""
    return Scores(edges)


def threshold_column(score: str) -> str:
    return score[: -len("_score")] + "_threshold" if score.endswith("_score") else "threshold"


def score_edges(low: float, high: float) -> np.ndarray:
    """Cosine scores get 0.0025-wide bins over [-1, 1]; other scales 400 bins over their range."""
    if low >= -1 and high <= 1:
        return np.linspace(-1, 1, 801)
    low, high = np.floor(low), np.ceil(high)
    return np.linspace(low, high if high > low else low + 1, 401)


class Scores:
    def __init__(self, edges: dict[str, np.ndarray]):
        self.all = {c: Histogram(e) for c, e in edges.items()}
        self.kept = {c: Histogram(e) for c, e in edges.items()}
        self.cut = {c: Histogram(e) for c, e in edges.items()}  # dropped by a score cut
        self.thresholds = {c: Counts() for c in edges}
        self.judged = {c: 0 for c in edges}  # rows that have a score and the threshold it faced
        self.passed = {c: 0 for c in edges}  # of which score >= threshold (exact, not from bins)

    def columns(self, available: list[str]) -> list[str]:
        return ["status", "reason", *self.all, *(threshold_column(c) for c in self.all)]

    def add(self, table: pa.Table) -> None:
        kept = kept_mask(table)
        cut = pc.is_in(table.column("reason").fill_null(""), pa.array(CUT_REASONS))
        for column in self.all:
            values = table.column(column)
            self.all[column].add(values.to_numpy(zero_copy_only=False))
            self.kept[column].add(values.filter(kept).to_numpy(zero_copy_only=False))
            self.cut[column].add(values.filter(cut).to_numpy(zero_copy_only=False))
            limit = threshold_column(column)
            if limit in table.column_names:
                thresholds = table.column(limit)
                self.thresholds[column].add(thresholds.drop_null().unique().to_pylist())
                judged = pc.and_(values.is_valid(), thresholds.is_valid())
                self.judged[column] += int(pc.sum(pc.cast(judged, pa.int64())).as_py() or 0)
                passed = pc.fill_null(pc.greater_equal(values, pc.cast(thresholds, values.type)), False)
                self.passed[column] += int(pc.sum(pc.cast(passed, pa.int64())).as_py() or 0)

    def merge(self, other: "Scores") -> "Scores":
        for name in ("all", "kept", "cut"):
            for column, histogram in getattr(other, name).items():
                getattr(self, name)[column].merge(histogram)
        for column, counts in other.thresholds.items():
            self.thresholds[column].merge(counts)
            self.judged[column] += other.judged[column]
            self.passed[column] += other.passed[column]
        return self

    def threshold(self, column: str) -> float | None:
        """The cut the run applied (all rows of a run share it; the highest if several)."""
        values = [v for v in self.thresholds[column].counter if v is not None and np.isfinite(v)]
        return max(values) if values else None

    def summary(self) -> pd.DataFrame:
        rows = []
        for column, histogram in self.all.items():
            threshold = self.threshold(column)
            rows.append({"score": column, **histogram.summary(), "threshold": threshold,
                         "kept": self.kept[column].n, "dropped_by_cut": self.cut[column].n,
                         "share_at_or_above_threshold": self.passed[column] / self.judged[column]
                         if self.judged[column] else float("nan")})
        return pd.DataFrame(rows)

    def histogram(self, column: str) -> pd.DataFrame:
        return side_by_side({"all": self.all[column], "kept": self.kept[column], "cut": self.cut[column]})


def side_by_side(histograms: dict[str, Histogram]) -> pd.DataFrame:
    """Histograms with the same bins as columns of one frame (open bins below and above the
    edges included), trimmed to the range some histogram occupies."""
    edges = next(iter(histograms.values())).edges
    frame = pd.DataFrame({"left": [-np.inf, *edges], "right": [*edges, np.inf]})
    for name, histogram in histograms.items():
        frame[name] = [histogram.under, *histogram.counts, histogram.over]
    occupied = np.flatnonzero(frame[list(histograms)].sum(axis=1).to_numpy())
    if occupied.size:
        frame = frame.iloc[occupied[0]:occupied[-1] + 1]
    return frame.reset_index(drop=True)


class Images:
    """Image sides, aspect ratio (log2 of width/height) and formats, over rows with an image size."""

    def __init__(self):
        side = np.arange(0, 4096 + 8, 8)
        aspect = np.linspace(-4, 4, 65)
        self.min_side = {"all": Histogram(side), "kept": Histogram(side)}
        self.max_side = {"all": Histogram(side), "kept": Histogram(side)}
        self.aspect = {"all": Histogram(aspect), "kept": Histogram(aspect)}
        self.formats = Counts()
        self.small = 0  # min side < 200
        self.elongated = 0  # long side / short side > 3

    @staticmethod
    def columns(available: list[str]) -> list[str]:
        return ["status", "width", "height", "image_format"]

    def add(self, table: pa.Table) -> None:
        if "width" not in table.column_names or "height" not in table.column_names:
            return
        w = table.column("width").to_numpy(zero_copy_only=False).astype(np.float64)
        h = table.column("height").to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.isfinite(w) & np.isfinite(h) & (w > 0) & (h > 0)
        kept = kept_mask(table).to_numpy(zero_copy_only=False) & ok
        short, long_ = np.minimum(w, h), np.maximum(w, h)
        with np.errstate(divide="ignore", invalid="ignore"):
            aspect = np.log2(w / h)
        for name, mask in (("all", ok), ("kept", kept)):
            self.min_side[name].add(short[mask])
            self.max_side[name].add(long_[mask])
            self.aspect[name].add(aspect[mask])
        self.small += int((short[ok] < MIN_SIDE).sum())
        self.elongated += int((long_[ok] > MAX_ASPECT * short[ok]).sum())
        if "image_format" in table.column_names:
            self.formats.add(table.column("image_format").filter(pa.array(ok)).to_pylist())

    def merge(self, other: "Images") -> "Images":
        for name in ("min_side", "max_side", "aspect"):
            for key, histogram in getattr(other, name).items():
                getattr(self, name)[key].merge(histogram)
        self.formats.merge(other.formats)
        self.small += other.small
        self.elongated += other.elongated
        return self

    def summary(self) -> dict:
        n = self.min_side["all"].n
        return {"with_size": n, "kept_with_size": self.min_side["kept"].n,
                "min_side_median": self.min_side["all"].quantile(0.5),
                "share_min_side_under_200": self.small / n if n else float("nan"),
                "share_aspect_over_3": self.elongated / n if n else float("nan")}


class Captions:
    """Caption length in characters and in whitespace-separated words."""

    def __init__(self):
        chars, words = np.arange(0, 1000 + 5, 5), np.arange(0, 200 + 1, 1)
        self.chars = {"all": Histogram(chars), "kept": Histogram(chars)}
        self.words = {"all": Histogram(words), "kept": Histogram(words)}
        self.missing = 0

    @staticmethod
    def columns(available: list[str]) -> list[str]:
        return ["status", "caption"]

    def add(self, table: pa.Table) -> None:
        caption = table.column("caption")
        self.missing += caption.null_count
        chars = pc.utf8_length(caption).to_numpy(zero_copy_only=False)
        words = pc.list_value_length(pc.utf8_split_whitespace(caption)).to_numpy(zero_copy_only=False)
        kept = kept_mask(table).to_numpy(zero_copy_only=False)
        for name, mask in (("all", slice(None)), ("kept", kept)):
            self.chars[name].add(np.asarray(chars, dtype=np.float64)[mask])
            self.words[name].add(np.asarray(words, dtype=np.float64)[mask])

    def merge(self, other: "Captions") -> "Captions":
        for name in ("chars", "words"):
            for key, histogram in getattr(other, name).items():
                getattr(self, name)[key].merge(histogram)
        self.missing += other.missing
        return self

    def summary(self) -> dict:
        return {"captions": self.chars["all"].n, "missing": self.missing,
                "chars_median": self.chars["all"].quantile(0.5), "words_median": self.words["all"].quantile(0.5),
                "kept_chars_median": self.chars["kept"].quantile(0.5),
                "kept_words_median": self.words["kept"].quantile(0.5)}


class Languages:
    def __init__(self, column: str):
        self.column = column
        self.all, self.kept = Counts(), Counts()

    @staticmethod
    def find(available: list[str]) -> str | None:
        return next((c for c in LANGUAGE_COLUMNS if c in available), None)

    def columns(self, available: list[str]) -> list[str]:
        return ["status", self.column]

    def add(self, table: pa.Table) -> None:
        values = table.column(self.column)
        self.all.add(values.to_pylist())
        self.kept.add(values.filter(kept_mask(table)).to_pylist())

    def merge(self, other: "Languages") -> "Languages":
        self.all.merge(other.all)
        self.kept.merge(other.kept)
        return self

    def table(self, top: int = 15) -> pd.DataFrame:
        """The `top` commonest languages (over all rows) and the rest, before and after curation."""
        ranked = self.all.top(None, name="language")
        head = ranked.head(top)
        rows = [{"language": lang, "all": n, "kept": self.kept.counter.get(lang, 0)}
                for lang, n in zip(head["language"], head["count"])]
        if len(ranked) > top:
            rows.append({"language": f"(other {len(ranked) - top})", "all": self.all.n - int(head["count"].sum()),
                         "kept": self.kept.n - sum(r["kept"] for r in rows)})
        frame = pd.DataFrame(rows, columns=["language", "all", "kept"])
        frame["share_all"] = frame["all"] / max(self.all.n, 1)
        frame["share_kept"] = frame["kept"] / max(self.kept.n, 1)
        return frame
