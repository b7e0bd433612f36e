"""Distributions over samples: scores and their cut, image sizes and aspect, captions, language.

Each is a fixed-bin histogram (curate.stats.histogram) over every row that has the value and
again over the kept rows, so a plot shows what the curation did to the distribution. DuckDB
computes them over the `ledger` view (curate.stats.sql), one query per value; caption lengths
are counted from the caption bytes in NumPy (curate.stats.caption_lengths: DuckDB's string
splitting costs several times as much).
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from curate.ledger.connection import column_range
from curate.ledger.expression import quote_name
from curate.stats.caption_lengths import lengths
from curate.stats.histogram import Counts, Histogram
from curate.stats.sql import histograms, one_row

CUT_REASONS = ("score:below_threshold", "score:not_target_cluster")
MIN_SIDE, MAX_ASPECT = 200, 3.0  # DataComp's basic filter, drawn as reference lines
LANGUAGE_COLUMNS = ("language", "lang")
KEPT = "status = 'kept'"  # SQL: a kept row (a NULL status is not kept)
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
           "FLOAT", "DOUBLE", "REAL")


SIGNAL_COLUMNS = ("nsfw_score", "aesthetic_score", "watermark_score", "text_area")  # curate.signals' columns
UNIT_SIGNALS = ("nsfw_score", "watermark_score", "text_area")  # probabilities and shares: [0, 1]


def score_columns(types: dict[str, str]) -> list[str]:
    """Numeric columns named `<role>_score` (clip_score, dfn_score, masked_clip_score, ...) or
    `score`; `types` maps the ledger's columns to their DuckDB types. The image signals are apart
    (signal_columns)."""
    return [name for name, kind in types.items()
            if (name.endswith("_score") or name == "score") and name != "language_score"
            and name not in SIGNAL_COLUMNS and kind in NUMERIC]


def signal_columns(types: dict[str, str]) -> list[str]:
    """The image signals this ledger has (nsfw_score, aesthetic_score, watermark_score, text_area)."""
    return [c for c in SIGNAL_COLUMNS if types.get(c) in NUMERIC]


def signal_edges(column: str, low: float, high: float) -> np.ndarray:
    """Probabilities and areas get 200 bins over [0, 1]; the aesthetic rating 400 over its range."""
    return np.linspace(0, 1, 201) if column in UNIT_SIGNALS else score_edges(low, high)


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
        self.thresholds = {c: Counts() for c in edges}  # threshold value -> rows that faced it
        self.judged = {c: 0 for c in edges}  # rows that have a score and the threshold it faced
        self.passed = {c: 0 for c in edges}  # of which score >= threshold (exact, not from bins)

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, types: dict[str, str], files: list[str] = (),
             signals: bool = False) -> "Scores":
        """Every score column's distribution (all, kept, dropped by the cut) and its cut; bins
        over the column's range in the whole ledger (the parts' statistics where they have it).
        `signals`: the image signals' columns instead (curate.signals: nothing cuts on them)."""
        columns = signal_columns(types) if signals else score_columns(types)
        ranges = {c: column_range(con, list(files), c, types[c]) or one_row(
            con, f"SELECT min({quote_name(c)})::DOUBLE, max({quote_name(c)})::DOUBLE FROM ledger") for c in columns}
        edges_of = (lambda c, low, high: signal_edges(c, low, high)) if signals else (
            lambda c, low, high: score_edges(low, high))
        out = cls({c: edges_of(c, *(r if r[0] is not None else (-1.0, 1.0))) for c, r in ranges.items()})
        cut = "reason IN (" + ", ".join(f"'{r}'" for r in CUT_REASONS) + ")"
        for column in columns:
            score = quote_name(column)
            found = histograms(con, score, out.all[column].edges, {"all": "true", "kept": KEPT, "cut": cut})
            out.all[column], out.kept[column], out.cut[column] = found["all"], found["kept"], found["cut"]
            if threshold_column(column) in types:
                limit = quote_name(threshold_column(column))
                for value, rows, judged, passed in con.execute(
                        f"SELECT {limit}, count(*), count_if({score} IS NOT NULL), "
                        f"count_if({score} >= CAST({limit} AS {types[column]})) FROM ledger WHERE {limit} IS NOT NULL "
                        "GROUP BY 1").fetchall():  # each threshold the run applied, the rows it judged, passed
                    out.thresholds[column].add({value: rows})
                    out.judged[column] += judged
                    out.passed[column] += passed
        return out

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

    SIDE_EDGES = np.arange(0, 4096 + 8, 8)
    ASPECT_EDGES = np.linspace(-4, 4, 65)
    SIZED = "isfinite(w) AND isfinite(h) AND w > 0 AND h > 0"

    def __init__(self):
        self.min_side = {"all": Histogram(self.SIDE_EDGES), "kept": Histogram(self.SIDE_EDGES)}
        self.max_side = {"all": Histogram(self.SIDE_EDGES), "kept": Histogram(self.SIDE_EDGES)}
        self.aspect = {"all": Histogram(self.ASPECT_EDGES), "kept": Histogram(self.ASPECT_EDGES)}
        self.formats = Counts()
        self.small = 0  # min side < 200
        self.elongated = 0  # long side / short side > 3

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, types: dict[str, str]) -> "Images":
        out = cls()
        if "width" not in types or "height" not in types:
            return out
        sized = (f"(SELECT CAST(width AS DOUBLE) AS w, CAST(height AS DOUBLE) AS h, status"
                 f"{', image_format' if 'image_format' in types else ''} FROM ledger)")
        groups = {"all": "true", "kept": KEPT}
        out.min_side = histograms(con, "least(w, h)", cls.SIDE_EDGES, groups, cls.SIZED, sized)
        out.max_side = histograms(con, "greatest(w, h)", cls.SIDE_EDGES, groups, cls.SIZED, sized)
        out.aspect = histograms(con, "log2(w / h)", cls.ASPECT_EDGES, groups, cls.SIZED, sized)
        image_format = "image_format" if "image_format" in types else "NULL"
        for kind, small, elongated, n in con.execute(
                f"SELECT {image_format} AS f, count_if(least(w, h) < {MIN_SIDE}), "
                f"count_if(greatest(w, h) > {MAX_ASPECT} * least(w, h)), count(*) FROM {sized} WHERE {cls.SIZED} "
                "GROUP BY f").fetchall():  # one pass: the counts, and the formats (a NULL one is not counted)
            out.small += small
            out.elongated += elongated
            if kind is not None:
                out.formats.add({kind: n})
        return out

    def summary(self) -> dict:
        n = self.min_side["all"].n
        return {"with_size": n, "kept_with_size": self.min_side["kept"].n,
                "min_side_median": self.min_side["all"].quantile(0.5),
                "share_min_side_under_200": self.small / n if n else float("nan"),
                "share_aspect_over_3": self.elongated / n if n else float("nan")}


class Captions:
    """Caption length in characters and in whitespace-separated words."""

    CHAR_EDGES, WORD_EDGES = np.arange(0, 1000 + 5, 5), np.arange(0, 200 + 1, 1)

    def __init__(self):
        self.chars = {"all": Histogram(self.CHAR_EDGES), "kept": Histogram(self.CHAR_EDGES)}
        self.words = {"all": Histogram(self.WORD_EDGES), "kept": Histogram(self.WORD_EDGES)}
        self.missing = 0

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, types: dict[str, str]) -> "Captions":
        """Lengths of every caption, counted batch by batch as DuckDB streams them out."""
        out = cls()
        for batch in con.sql(f"SELECT caption, coalesce({KEPT}, false) FROM ledger").to_arrow_reader(1 << 17):
            caption, kept = batch.column(0), batch.column(1).to_numpy(zero_copy_only=False)
            out.missing += caption.null_count
            chars, words = lengths(caption)
            for name, mask in (("all", slice(None)), ("kept", kept)):
                out.chars[name].add(chars[mask])
                out.words[name].add(words[mask])
        return out

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

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, column: str) -> "Languages":
        out = cls(column)
        rows = con.execute(f"SELECT {quote_name(column)}, count(*), count_if({KEPT}) FROM ledger "
                           f"WHERE {quote_name(column)} IS NOT NULL GROUP BY 1").fetchall()
        out.all.add({lang: n for lang, n, _ in rows})
        out.kept.add({lang: k for lang, _, k in rows if k})
        return out

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
