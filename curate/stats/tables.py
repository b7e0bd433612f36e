"""The statistics of a run as named pandas tables, a consistency check, and a text rendering."""
from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

from curate.stats.collect import METACLIP, RunStats, as_frame
from curate.stats.shards import shard_summary

KEPT = "kept"


def overview(rs: RunStats) -> pd.DataFrame:
    s, funnel = rs.stats, rs.funnel
    facts = {"output": rs.run.path, "pipeline": s.get("pipeline"), "runner": s.get("runner"),
             "seed": s.get("seed"), "input": s.get("source"), "ledger_parts_read":
             f"{rs.parts_read} of {len(rs.run.ledger_files_all)}",
             "inputs": funnel.inputs, "kept": funnel.kept, "dropped": funnel.inputs - funnel.kept,
             "kept_share": funnel.kept / funnel.inputs if funnel.inputs else math.nan,
             "kept_in_shards": s.get("kept_in_shards"), "kept_as_urls": s.get("kept_as_urls"),
             "wall_time_s": s.get("wall_time_s")}
    return as_frame({k: v for k, v in facts.items() if v is not None})


def checks(rs: RunStats) -> pd.DataFrame:
    """What the ledger says next to what stats.json says; `ok` False marks a disagreement.

    Only meaningful when every ledger part was read (a sampled read is not checked).
    """
    s, funnel = rs.stats, rs.funnel
    rows = []

    def check(name, from_ledger, from_stats):
        if from_stats is not None:
            rows.append({"check": name, "ledger": from_ledger, "stats_json": from_stats,
                         "ok": from_ledger == from_stats})

    if rs.sampled or not s:
        return pd.DataFrame(rows, columns=["check", "ledger", "stats_json", "ok"])
    check("inputs", funnel.inputs, s.get("inputs"))
    check("kept", funnel.kept, s.get("kept"))
    check("dropped_by_reason", {r: n for r, n in sorted(funnel.reasons.counter.items()) if r != KEPT},
          dict(sorted(s.get("dropped_by_reason", {}).items())))
    check("kept_in_shards", int(rs.shards["count"].sum()), s.get("kept_in_shards"))
    check("shards", len(rs.shards), len(s.get("shards", [])))
    entries, facts = rs.get("entries"), s.get("stages", {}).get(METACLIP)
    if entries is not None and facts:
        summary = entries.summary(facts.get("t"))
        check("metaclip pool", summary["pool"], facts.get("pool"))
        check("metaclip entries_matched", summary["entries_matched"], facts.get("entries_matched"))
        check("metaclip entries_over_t", summary.get("entries_over_t"), facts.get("entries_over_t"))
        check("metaclip matches", summary["matches"], facts.get("matches"))
    downloads, facts = rs.get("downloads"), s.get("stages", {}).get("Download")
    if downloads is not None and facts:
        summary = downloads.summary()
        check("download urls", summary["attempted"], facts.get("urls"))
        check("download ok", summary["ok"], facts.get("ok"))
        check("download hosts", summary["hosts"], facts.get("hosts"))
    scores, facts = rs.get("scores"), s.get("stages", {}).get("Score", {}).get("cuts", {})
    for role, cut in (facts.get("keep_fraction") or {}).items():
        column = f"{role}_score"
        if scores is not None and column in scores.all and cut.get("threshold") is not None:
            check(f"{column} pool", scores.all[column].n, cut.get("pool"))
            check(f"{column} at or above the cut", scores.passed[column], cut.get("at_or_above"))
    return pd.DataFrame(rows, columns=["check", "ledger", "stats_json", "ok"])


def tables(rs: RunStats, top: int = 20) -> dict[str, pd.DataFrame]:
    """Every table this run has data for, in reading order."""
    out = {"overview": overview(rs), "funnel": rs.funnel.funnel(), "drops_by_reason": rs.funnel.by_reason()}
    downloads = rs.get("downloads")
    if downloads is not None:
        out["downloads"] = as_frame(downloads.summary())
        out["download_errors_by_reason"] = downloads.by_reason()
        out["download_errors_by_host"] = downloads.by_host(top)
    scores = rs.get("scores")
    if scores is not None:
        out["scores"] = scores.summary()
    signals = rs.get("signals")
    if signals is not None:
        out["signals"] = signals.summary().rename(columns={"score": "signal"})
    entries = rs.get("entries")
    if entries is not None:
        out["metaclip_entries"] = as_frame(entries.summary(rs.t))
        out["metaclip_top_entries"] = entries.top(rs.t, rs.entry_strings, top)
    languages = rs.get("languages")
    if languages is not None:
        out["languages"] = languages.table(top)
    images = rs.get("images")
    if images.min_side["all"].n:
        out["images"] = as_frame(images.summary())
        out["image_formats"] = images.formats.top(name="format")
    out["captions"] = as_frame(rs.get("captions").summary())
    duplicates = rs.get("duplicates")
    if duplicates is not None:
        out["duplicates"] = duplicates.summary()
        out["duplicate_cluster_sizes"] = pd.concat(
            [duplicates.cluster_sizes(k).assign(key=k) for k in duplicates.keys], ignore_index=True)
        if duplicates.reasons.n:
            out["dedup_drops"] = duplicates.reasons.top(name="reason")
        if duplicates.distances:
            out["dedup_distances"] = duplicates.distance_summary()
    if not rs.shards.empty:
        out["shards_summary"] = as_frame(shard_summary(rs.shards))
        out["shards"] = rs.shards
    check = checks(rs)
    if not check.empty:
        out["checks"] = check
    if rs.notes:
        out["notes"] = pd.DataFrame({"note": rs.notes})
    return out


def format_value(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "-"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def format_table(frame: pd.DataFrame, max_rows: int = 40) -> str:
    shown = frame.head(max_rows)
    text = shown.to_string(index=False, formatters={c: format_value for c in shown.columns})
    if len(frame) > max_rows:
        text += f"\n... {len(frame) - max_rows} more rows"
    return text


def format_tables(named: dict[str, pd.DataFrame], max_rows: int = 40) -> str:
    blocks = []
    for name, frame in named.items():
        title = name.replace("_", " ")
        blocks.append(f"== {title} ==\n{format_table(frame, max_rows)}")
    return "\n\n".join(blocks)
