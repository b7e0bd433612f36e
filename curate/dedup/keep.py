"""Which sample of a duplicate group is kept: a deterministic preference order over rows.

`first_uid`: the smallest uid (uids are hashes of url and caption, so this is a fixed but
arbitrary pick that does not depend on input order). `best_score`: the highest
`--dedup_score_field` value, rows without one last, ties by smallest uid. Rows with equal
uids (the same url and caption twice) fall back to input order, whatever the bundle split.
"""
from __future__ import annotations

import numpy as np

KEEP_RULES = ("best_score", "first_uid")


def rank(keys: np.ndarray, keep: str, prefer: np.ndarray | None = None) -> np.ndarray:
    """Rank of each row in keep-preference order (0 = kept first).

    `prefer`: a value where higher is better, used before the uid (SemDeDup's closeness to its
    centroid); otherwise `keep` picks it: the score for best_score, nothing for first_uid.
    """
    columns = [keys["pos"], keys["batch"], keys["uid"]]
    if prefer is None and keep == "best_score":
        prefer = keys["score"]
    elif prefer is None and keep != "first_uid":
        raise ValueError(f"unknown keep rule {keep!r}")
    if prefer is not None:
        higher_first = -np.nan_to_num(np.asarray(prefer, dtype=np.float64), nan=-np.inf)
        columns.append(higher_first)
    order = np.lexsort(columns)
    ranks = np.empty(len(keys), dtype=np.int64)
    ranks[order] = np.arange(len(keys))
    return ranks
