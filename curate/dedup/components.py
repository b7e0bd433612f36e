"""Connected components of an edge list: a vectorized union-find, and one keeper per component.

Union by smaller root with full path compression, done for all edges at once in numpy
(hook every edge's larger root onto its smaller one, then jump pointers until every row points
at its root); a few rounds suffice even for long chains, and no Python loop runs per edge.
"""
from __future__ import annotations

import numpy as np


def find_roots(parent: np.ndarray) -> np.ndarray:
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Component label of each of n rows (the smallest row index in its component)."""
    parent = np.arange(n, dtype=np.int64)
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    while len(i):
        ri, rj = parent[i], parent[j]
        differ = ri != rj
        if not differ.any():
            break
        i, j, ri, rj = i[differ], j[differ], ri[differ], rj[differ]  # settled edges drop out
        lo, hi = np.minimum(ri, rj), np.maximum(ri, rj)
        np.minimum.at(parent, hi, lo)  # union: the larger root joins the smaller
        parent = find_roots(parent)
    return parent


def keepers(labels: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For each row, the row its component keeps: the one with the lowest rank."""
    order = np.lexsort((rank, labels))
    sorted_labels = labels[order]
    starts = np.r_[True, sorted_labels[1:] != sorted_labels[:-1]]
    best_of_label = np.empty(len(labels), dtype=np.int64)
    best_of_label[sorted_labels[starts]] = order[starts]
    return best_of_label[labels]


def star_edges(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges joining the rows of each group id to the group's first row (same components, n edges)."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]
    head = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    member = order != head
    return head[member].astype(np.int64), order[member].astype(np.int64)
