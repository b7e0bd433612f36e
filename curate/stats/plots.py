"""Plots of a run's statistics (matplotlib). Each function returns a Figure, or None without data.

Colours keep one meaning everywhere: grey = every sample that had the value, green = kept,
red = dropped (by the cut being shown), dashed lines = the thresholds the recipes use. Bars are
counts of samples (never shares drawn side by side: a kept share can exceed an all share while
its count cannot), every axis says what it counts, and a plot's top-N is the tables' top-N.
"""
from __future__ import annotations

import numpy as np

from curate.stats.collect import RunStats
from curate.stats.distributions import MAX_ASPECT, MIN_SIDE, side_by_side

ALL, KEPT, DROPPED = "#9e9e9e", "#2e7d32", "#c62828"
TOP = 20  # rows of a top-N plot, as tables(rs, top=20) and `python -m curate.stats --top`


def _figure(rows: int = 1, cols: int = 1, width: float = 10, height: float = 4):
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # a script or the CLI: render to files, no display
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
    return fig, axes.ravel()


def _zoom(ax, histogram, q: float = 0.99) -> None:
    """Show up to a high quantile: a long tail would squeeze the bulk into a few pixels."""
    high = histogram.quantile(q)
    if histogram.n and np.isfinite(high) and high < histogram.high:
        ax.set_xlim(left=max(ax.get_xlim()[0], histogram.low - 1), right=high * 1.15 + 1)
        ax.text(0.99, 0.5, f"{1 - q:.0%} longest not shown\n(max {histogram.high:,.0f})", transform=ax.transAxes,
                ha="right", fontsize=8, color="#555")


def _bars(ax, frame, value_columns: dict[str, str], log: bool = False):
    """Overlaid step histograms of a side_by_side frame: {column: colour}."""
    edges = np.append(frame["left"].to_numpy(), frame["right"].to_numpy()[-1:]).astype(np.float64)
    finite = edges[np.isfinite(edges)]
    width = np.diff(finite).min() if finite.size > 1 else 1.0
    if not np.isfinite(edges[0]):  # the open "below the bins" bin, drawn one bin wide
        edges[0] = edges[1] - width
    if not np.isfinite(edges[-1]):
        edges[-1] = edges[-2] + width
    for column, colour in value_columns.items():
        ax.stairs(frame[column].to_numpy(), edges, fill=column == "all",
                  color=colour, alpha=0.5 if column == "all" else 1.0, label=column, linewidth=1.5)
    if log:
        ax.set_yscale("log")
    ax.legend(frameon=False)


def _all_vs_kept(ax, histograms: dict, title: str, zoom: bool = True) -> None:
    """Every sample's distribution (filled grey) under the kept samples' (green line)."""
    _bars(ax, side_by_side(histograms), {"all": ALL, "kept": KEPT})
    if zoom:
        _zoom(ax, histograms["all"])
    ax.set_title(title)


def funnel(rs: RunStats):
    frame, reasons = rs.funnel.funnel(), rs.funnel.by_reason()
    fig, (left, right) = _figure(1, 2, 12, max(3, 0.45 * max(len(frame), len(reasons)) + 1.5))
    labels = list(frame["stage"])[::-1]
    left.barh(labels, list(frame["out"])[::-1], color=KEPT)
    left.barh(labels, list(frame["dropped"])[::-1], left=list(frame["out"])[::-1], color=DROPPED, alpha=0.6)
    for y, (out, share) in enumerate(zip(list(frame["out"])[::-1], list(frame["out_share_of_inputs"])[::-1])):
        left.text(out, y, f" {out:,} ({share:.1%})", va="center", fontsize=9)
    left.set_title(f"samples left after each stage (kept {rs.funnel.kept:,} of {rs.funnel.inputs:,})")
    left.set_xlabel("samples (green: left after the stage, red: dropped by it)")
    left.set_xlim(0, max(1, rs.funnel.inputs) * 1.35)
    if len(reasons):
        right.barh(list(reasons["reason"])[::-1], list(reasons["count"])[::-1], color=DROPPED)
        for y, n in enumerate(list(reasons["count"])[::-1]):
            right.text(n, y, f" {n:,}", va="center", fontsize=9)
        right.set_xlim(0, reasons["count"].max() * 1.25)
    right.set_title("dropped, by reason")
    right.set_xlabel("samples")
    fig.tight_layout()
    return fig


def _histograms(agg, noun: str, xlabel, cuts: bool):
    """One panel per column of a Scores aggregate: all rows, kept, dropped by a cut [and the cut]."""
    if agg is None or not any(h.n for h in agg.all.values()):
        return None
    columns = [c for c, h in agg.all.items() if h.n]
    fig, axes = _figure(1, len(columns), 6 * len(columns), 4)
    for ax, column in zip(axes, columns):
        _bars(ax, agg.histogram(column), {"all": ALL, "kept": KEPT, "cut": DROPPED})
        threshold = agg.threshold(column) if cuts else None
        if threshold is not None:
            ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
            ax.text(threshold, ax.get_ylim()[1] * 0.95, f" cut {threshold:.4f}", va="top", fontsize=9)
        ax.set_title(f"{column}: {agg.all[column].n:,} {noun}, {agg.kept[column].n:,} kept")
        ax.set_xlabel(xlabel(agg, column))
        ax.set_ylabel("samples per bin")
    fig.tight_layout()
    return fig


def scores(rs: RunStats):
    return _histograms(rs.get("scores"), "scored",
                       lambda agg, c: "cosine(image, text)" if agg.all[c].edges[0] == -1 else c, cuts=True)


def signals(rs: RunStats):
    """Each image signal's distribution: all rows that have it, kept, dropped by a score cut."""
    return _histograms(rs.get("signals"), "images", lambda agg, c: c, cuts=False)


def entries(rs: RunStats, top: int = TOP):
    agg = rs.get("entries")
    if agg is None or not agg.before.any():
        return None
    curves, t = agg.rank_curves(), rs.t
    fig, (left, right) = _figure(1, 2, 13, 5)
    left.loglog(curves["rank"], curves["before"], color=ALL, label="before balancing", linewidth=2)
    left.loglog(curves["rank"], np.maximum(curves["balanced"], 0.8), color=KEPT, label="after balancing")
    if t is not None:
        left.axhline(t, color="black", linestyle="--", linewidth=1, label=f"t = {t:g}")
    left.set_xlabel("entry rank (1 = most captions)")
    left.set_ylabel("captions per entry")
    left.set_title("MetaCLIP entries: captions per entry, by rank")
    left.legend(frameon=False)
    table = agg.top(t, rs.entry_strings, top)[::-1]
    y = np.arange(len(table))
    right.barh(y - 0.2, table["before"], height=0.4, color=ALL, label="before")
    right.barh(y + 0.2, table["balanced"], height=0.4, color=KEPT, label="after balancing")
    right.set_yticks(y, [str(e)[:28] for e in table["entry"]], fontsize=8)
    if t is not None:
        right.axvline(t, color="black", linestyle="--", linewidth=1)
    right.set_title(f"the {len(table)} commonest entries")
    right.set_xlabel("captions matching the entry")
    right.legend(frameon=False)
    fig.tight_layout()
    return fig


def downloads(rs: RunStats, top: int = TOP):
    agg = rs.get("downloads")
    if agg is None or not agg.attempted:
        return None
    matrix = agg.host_reason_matrix(top)
    fig, (left, right) = _figure(1, 2, 13, max(4, 0.35 * len(matrix) + 1.5))
    reasons = agg.by_reason()
    left.barh(list(reasons["reason"])[::-1], list(reasons["count"])[::-1], color=DROPPED)
    left.set_title(f"download errors: {agg.reasons.n:,} of {agg.attempted:,} attempted")
    left.set_xlabel("URLs")
    if not matrix.empty:
        bottom = np.zeros(len(matrix))
        hosts = list(matrix.index)[::-1]
        for column in matrix.columns:
            values = matrix[column].to_numpy()[::-1]
            right.barh(hosts, values, left=bottom, label=column.split(":", 1)[-1])
            bottom += values
        right.legend(frameon=False, fontsize=8)
    right.set_title("errors by host (worst hosts)")
    right.set_xlabel("failed URLs")
    fig.tight_layout()
    return fig


def languages(rs: RunStats, top: int = TOP):
    """Captions per language, all and kept (counts; each bar says its share of its group)."""
    agg = rs.get("languages")
    if agg is None or not agg.all.n:
        return None
    table = agg.table(top)[::-1]
    y = np.arange(len(table))
    fig, (ax,) = _figure(1, 1, 9, max(3, 0.35 * len(table) + 2))
    for offset, column, colour, total, name in ((-0.2, "all", ALL, agg.all.n, "all"),
                                                 (0.2, "kept", KEPT, agg.kept.n, "kept")):
        counts = table[column].to_numpy()
        ax.barh(y + offset, counts, height=0.4, color=colour, label=f"{name} ({total:,} captions)")
        for yy, n in zip(y + offset, counts):
            ax.text(n, yy, f" {n:,} ({n / total:.0%})" if total else f" {n:,}", va="center", fontsize=7)
    ax.set_yticks(y, table["language"])
    ax.set_xlim(0, max(1, table["all"].max()) * 1.3)
    ax.set_xlabel("captions (share of all / of kept in brackets)")
    ax.set_title(f"caption language ({len(agg.all.top(None, name='language')):,} languages)")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)  # never over a bar
    fig.tight_layout()
    return fig


def images(rs: RunStats):
    agg = rs.get("images")
    if agg is None or not agg.min_side["all"].n:
        return None
    fig, (left, right) = _figure(1, 2, 12, 4)
    summary = agg.summary()
    _all_vs_kept(left, agg.min_side, f"shorter image side (px); {summary['share_min_side_under_200']:.1%} "
                                     f"under {MIN_SIDE}")
    left.axvline(MIN_SIDE, color="black", linestyle="--", linewidth=1)
    _all_vs_kept(right, agg.aspect, f"aspect ratio (width:height); {summary['share_aspect_over_3']:.1%} "
                                    "beyond 3:1", zoom=False)
    for x in (-np.log2(MAX_ASPECT), np.log2(MAX_ASPECT)):
        right.axvline(x, color="black", linestyle="--", linewidth=1)
    ticks = [-3, -2, -1, 0, 1, 2, 3]
    right.set_xticks(ticks, ["1:8", "1:4", "1:2", "1:1", "2:1", "4:1", "8:1"])
    fig.tight_layout()
    return fig


def captions(rs: RunStats):
    agg = rs.get("captions")
    if agg is None or not agg.chars["all"].n:
        return None
    fig, (left, right) = _figure(1, 2, 12, 4)
    _all_vs_kept(left, agg.chars, f"caption length (characters); median {agg.chars['all'].quantile(0.5):.0f}")
    _all_vs_kept(right, agg.words, f"caption length (words); median {agg.words['all'].quantile(0.5):.0f}")
    fig.tight_layout()
    return fig


def duplicates(rs: RunStats):
    agg = rs.get("duplicates")
    if agg is None or not any(agg.clusters(k) for k in agg.keys):
        return None
    keys = [k for k in agg.keys if agg.clusters(k)]
    fig, axes = _figure(1, len(keys), 6 * len(keys), 4)
    for ax, key in zip(axes, keys):
        sizes = agg.cluster_sizes(key)
        bars = ax.bar(sizes["size"].astype(str), sizes["samples"], color=ALL)
        ax.bar_label(bars, fontsize=7)
        ax.set_xlabel("cluster size (samples sharing one key)")
        ax.set_ylabel("samples")
        ax.set_title(f"duplicate clusters by {key}")
    fig.tight_layout()
    return fig


def shards(rs: RunStats):
    if rs.shards.empty:
        return None
    table = rs.shards
    fig, (left, right) = _figure(1, 2, 12, 3.5)
    x = np.arange(len(table))
    names = [f"{int(s):05d}" for s in table["shard"]]
    for ax, values, colour, label, fmt in ((left, table["count"], KEPT, "samples", "{:,.0f}"),
                                           (right, table["file_bytes"] / 2**20, ALL, "MiB", "{:,.1f}")):
        bars = ax.bar(x, values, width=0.6, color=colour)
        if len(table) <= 40:  # each bar says its value while they are few enough to read
            ax.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=7)
        ax.set_xticks(x, names)
        ax.set_xlim(-0.75, max(len(table), 3) - 0.25)  # one shard is one bar, not the whole width
        ax.set_xlabel("shard")
        ax.set_ylabel(label)
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    left.set_title(f"samples per shard: {int(table['count'].sum()):,} in {len(table)} shard(s)")
    right.set_title(f"MiB per shard file: {table['file_bytes'].sum() / 2**20:,.1f} in all")
    fig.tight_layout()
    return fig


PLOTS = {"funnel": funnel, "scores": scores, "signals": signals, "metaclip_entries": entries, "downloads": downloads,
         "languages": languages, "images": images, "captions": captions, "duplicates": duplicates,
         "shards": shards}


def figures(rs: RunStats, top: int = TOP) -> dict:
    """Every plot this run has data for, by name (top-N plots with `top` rows, as the tables)."""
    import inspect

    found = {}
    for name, plot in PLOTS.items():
        fig = plot(rs, top) if "top" in inspect.signature(plot).parameters else plot(rs)
        if fig is not None:
            found[name] = fig
    return found
