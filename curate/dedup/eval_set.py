"""Evaluation images that must not leak into training: their pHashes and the nearest-match test.

An eval set is small (thousands to ~100k images), so it travels to every worker as one side
input; each worker builds a FAISS flat binary index on it once and finds, for every training
image, the nearest eval image and whether it is within `--eval_radius` bits.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from curate.dedup.hamming import as_codes
from curate.errors import UsageError
from curate.inputs import open_source
from curate.io.source import Source

MAX_LISTED_MATCHES = 10_000  # eval items listed one by one in stats.json


def open_eval_source(path: str) -> Source:
    """The eval images' Source (folder, tars, URL list); UsageError naming --eval_images."""
    try:
        return open_source(path)
    except UsageError as e:
        raise UsageError(str(e).replace("--input", "--eval_images", 1)) from None


@dataclass
class EvalSet:
    keys: list[str] = field(default_factory=list)  # source key (file, tar key) or URL of each item
    captions: list = field(default_factory=list)
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    unreadable: int = 0  # eval rows without a usable image (missing, undecodable, failed fetch)
    _index: object = field(default=None, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_index"] = None  # FAISS indexes are rebuilt on each worker, never pickled
        return state

    def merged(self, other: "EvalSet") -> "EvalSet":
        return EvalSet(self.keys + other.keys, self.captions + other.captions,
                       np.concatenate([self.hashes, other.hashes]), self.unreadable + other.unreadable)

    def sorted(self) -> "EvalSet":
        order = sorted(range(len(self.keys)), key=self.keys.__getitem__)
        return EvalSet([self.keys[i] for i in order], [self.captions[i] for i in order],
                       self.hashes[order] if order else self.hashes, self.unreadable)

    def nearest(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(eval item index, Hamming distance) of the nearest eval image to each hash."""
        if not len(self.keys) or not len(hashes):
            return np.full(len(hashes), -1), np.full(len(hashes), 65)
        if self._index is None:
            import faiss  # lazily, once per worker

            self._index = faiss.IndexBinaryFlat(64)
            self._index.add(as_codes(self.hashes))
        distances, found = self._index.search(as_codes(np.asarray(hashes, np.uint64)), 1)
        return found[:, 0].astype(np.int64), distances[:, 0].astype(np.int64)


def summarize(eval_set: EvalSet, matches: list[tuple[int, str, int]], radius: int, source: str) -> dict:
    """Which eval items matched training samples: for stats.json."""
    per_item: dict[int, list] = {}
    for item, uid, distance in matches:
        per_item.setdefault(item, []).append((distance, uid))
    listed = []
    for item in sorted(per_item, key=lambda i: eval_set.keys[i])[:MAX_LISTED_MATCHES]:
        hits = sorted(per_item[item])
        listed.append({"eval_item": eval_set.keys[item], "caption": eval_set.captions[item],
                       "training_samples": len(hits), "min_distance": hits[0][0],
                       "example_uids": [uid for _, uid in hits[:5]]})
    return {
        "eval_source": source,
        "eval_items": len(eval_set.keys),
        "eval_unreadable": eval_set.unreadable,
        "radius": radius,
        "eval_items_matched": len(per_item),
        "training_samples_dropped": len(matches),
        "matches": listed,
        "matches_truncated": len(per_item) > MAX_LISTED_MATCHES,
    }
