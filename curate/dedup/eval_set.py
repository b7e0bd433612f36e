"""Evaluation images that must not leak into training: their pHashes, embeddings, nearest matches.

An eval set is small (thousands to ~100k images), so it travels to every worker as one side
input; each worker builds FAISS flat indexes on it once (binary for pHashes, inner product for
normalized embeddings) and finds, for every training image, the nearest eval image.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from curate.dedup.hamming import as_codes
from curate.dedup.semdedup import normalize
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
    embeddings: np.ndarray | None = None  # fp16 [n, d] image embeddings, when asked for
    _index: object = field(default=None, repr=False, compare=False)
    _vector_index: object = field(default=None, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_index"] = state["_vector_index"] = None  # FAISS indexes are built on each worker
        return state

    def merged(self, other: "EvalSet") -> "EvalSet":
        vectors = [e for e in (self.embeddings, other.embeddings) if e is not None and len(e)]
        return EvalSet(self.keys + other.keys, self.captions + other.captions,
                       np.concatenate([self.hashes, other.hashes]), self.unreadable + other.unreadable,
                       np.concatenate(vectors) if vectors else None)

    def sorted(self) -> "EvalSet":
        order = sorted(range(len(self.keys)), key=self.keys.__getitem__)
        embeddings = self.embeddings[order] if self.embeddings is not None and order else self.embeddings
        return EvalSet([self.keys[i] for i in order], [self.captions[i] for i in order],
                       self.hashes[order] if order else self.hashes, self.unreadable, embeddings)

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

    def most_similar(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(eval item index, cosine) of the eval image whose embedding is closest to each vector."""
        if self.embeddings is None or not len(self.embeddings) or not len(vectors):
            return np.full(len(vectors), -1), np.full(len(vectors), -np.inf)
        if self._vector_index is None:
            import faiss

            self._vector_index = faiss.IndexFlatIP(self.embeddings.shape[1])
            self._vector_index.add(normalize(self.embeddings))
        cosine, found = self._vector_index.search(normalize(vectors), 1)
        return found[:, 0].astype(np.int64), cosine[:, 0].astype(np.float64)


def summarize(eval_set: EvalSet, matches: list[tuple[int, str, str, float]], radius: int, source: str,
              cosine: float | None = None) -> dict:
    """Which eval items matched training samples, and how closely: for stats.json."""
    per_item: dict[int, list] = {}
    for item, uid, kind, distance in matches:
        per_item.setdefault(item, []).append((kind, distance, uid))
    listed = []
    for item in sorted(per_item, key=lambda i: eval_set.keys[i])[:MAX_LISTED_MATCHES]:
        hits = sorted(per_item[item])
        closest = {}
        for kind, distance, _ in hits:
            closest.setdefault(kind, distance)  # hits are sorted: the first of a kind is the closest
        listed.append({"eval_item": eval_set.keys[item], "caption": eval_set.captions[item],
                       "training_samples": len(hits), "closest": closest,
                       "example_uids": sorted(uid for _, _, uid in hits)[:5]})
    return {
        "eval_source": source,
        "eval_items": len(eval_set.keys),
        "eval_unreadable": eval_set.unreadable,
        "radius": radius,
        "cosine": cosine,
        "eval_embeddings": 0 if eval_set.embeddings is None else len(eval_set.embeddings),
        "eval_items_matched": len(per_item),
        "training_samples_dropped": len(matches),
        "matches": listed,
        "matches_truncated": len(per_item) > MAX_LISTED_MATCHES,
    }
