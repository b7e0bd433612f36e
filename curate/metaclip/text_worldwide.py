"""MetaCLIP 2 on Arrow blocks: the column-wise graph's matching and balancing of one block,
with the decisions of the sample graph's MatchWorldwide / BalanceWorldwide (stages.py)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from curate.filters.language import LANGUAGE, LANGUAGE_SCORE
from curate.metaclip import worldwide
from curate.metaclip.names import (BALANCED_OUT, ENTRY_IDS, KEEP_PROBABILITY, METACLIP_T, NO_LANGUAGE_METADATA,
                                   NO_MATCH, reason)

_NO_MATCH, _NO_LANGUAGE_METADATA, _BALANCED_OUT = reason(NO_MATCH), reason(NO_LANGUAGE_METADATA), reason(BALANCED_OUT)


def match_block(matcher: worldwide.WorldwideMatcher, counts: worldwide.LanguageCounts, rows: pa.RecordBatch,
                reasons: list, live: list[int]) -> dict[str, pa.Array]:
    """Language, score and entry ids of a block's live rows (reasons updated in place)."""
    n = rows.num_rows
    captions = rows.column("caption").to_pylist()
    languages: list = [None] * n
    scores: list = [None] * n
    id_lists: list = [None] * n
    for i in live:
        code, score, language, ids = matcher.match(captions[i] or "")
        languages[i], scores[i] = language or code, score
        counts.add(language, code, ids)
        if language is None:
            reasons[i] = _NO_LANGUAGE_METADATA
            continue
        id_lists[i] = ids
        if not ids:
            reasons[i] = _NO_MATCH
    counts.flush()
    return {LANGUAGE: pa.array(languages, pa.string()), LANGUAGE_SCORE: pa.array(scores, pa.float32()),
            ENTRY_IDS: pa.array(id_lists, pa.list_(pa.int32()))}


def balance_block(rows: pa.RecordBatch, reasons: list, live: list[int], counted: dict, t: float | None,
                  seed: int) -> tuple[dict[str, pa.Array], dict[str, int]]:
    """Keep probability and t of a block's live (matched) rows, reasons updated in place; kept
    captions per language."""
    n = rows.num_rows
    uids = rows.column("uid").to_pylist()
    languages = rows.column(LANGUAGE).to_pylist()
    id_lists = rows.column(ENTRY_IDS).to_pylist()
    kept, keep_prob, used_t = worldwide.select([uids[i] for i in live], [languages[i] for i in live],
                                               [id_lists[i] for i in live], counted, t, seed)
    probability, t_column = np.full(n, np.nan), np.full(n, np.nan)
    probability[live], t_column[live] = keep_prob, used_t
    for i, k in zip(live, kept):
        if not k:
            reasons[i] = _BALANCED_OUT
    kept_languages = Counter(languages[i] for i, k in zip(live, kept) if k)
    columns = {KEEP_PROBABILITY: pa.array(probability, pa.float64(), mask=np.isnan(probability)),
               METACLIP_T: pa.array(t_column, pa.float64(), mask=np.isnan(t_column))}
    return columns, dict(kept_languages)
