"""MetaCLIP 2 (worldwide) per-language balancing facts, as tables, from a run's stats.json.

The run records them while it balances (stats.json `stages.MetaCLIP.languages`): per metadata
language the captions that reached matching (pool), matched, kept by balancing, and the t that
decided them; and per detected language without metadata the captions dropped for it.
"""
from __future__ import annotations

import pandas as pd


def metaclip2_languages(stats: dict) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(per-language table, no-metadata table), or None when the run is not MetaCLIP 2."""
    facts = stats.get("stages", {}).get("MetaCLIP", {})
    if facts.get("version") != 2:
        return None
    rows = pd.DataFrame.from_dict(facts.get("languages", {}), orient="index")
    if not rows.empty:
        rows.index.name = "language"
        rows["kept_share"] = rows["kept"] / rows["matched"].where(rows["matched"] > 0)
        rows = rows.sort_values("pool", ascending=False)[
            ["pool", "matched", "kept", "kept_share", "t", "metadata_entries", "entries_matched", "entries_over_t"]]
    missing = pd.DataFrame(sorted(facts.get("no_language_metadata", {}).items(), key=lambda kv: -kv[1]),
                           columns=["detected_language", "captions_dropped"])
    return rows, missing
