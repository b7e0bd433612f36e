"""The one pass over the images: per-sample keys out, eval-set matches dropped on the spot.

For every sample of a batch: the normalized-URL digest, the sha256 of its bytes, its pHash,
its score and (for SemDeDup) its embedding become a row of small values; only those leave the
batch (tagged outputs), the images stay. A sample within `--eval_radius` of an eval image is
dropped here as `dedup:eval_contamination`, naming the eval item and the distance (Hamming bits;
or 1 - cosine when `--eval_cosine` matched the scoring model's embeddings).
"""
from __future__ import annotations

import hashlib
import math

import apache_beam as beam
import numpy as np
import pyarrow as pa

from curate.dedup import keys as K
from curate.dedup.eval_set import EvalSet
from curate.dedup.options import DedupConfig
from curate.dedup.phash import phash, to_hex
from curate.sample import Sample, SampleBatch
from curate.stage import SampleStage, split_batch

KEYS = "keys"  # tagged output: one keys array per batch
EMBEDDINGS = "embeddings"  # tagged output: (keys, fp16 embeddings) of the rows that have one
EVAL_MATCHES = "eval_matches"  # tagged output: [(eval item index, uid, "phash" | "embedding", distance)]

PHASH = "phash"
KEEPER = "dedup_keeper"
DISTANCE = "dedup_distance"
EVAL_ITEM = "dedup_eval_item"
FIELDS = {PHASH: pa.string(), KEEPER: pa.string(), DISTANCE: pa.float32(), EVAL_ITEM: pa.string()}


def score_of(sample: Sample, fields: tuple[str, ...]) -> float:
    """The first of `fields` the sample has: computed in this run, else an input column (e.g. the
    clip_score a scored run wrote into the shards being deduplicated); NaN without one."""
    return as_score(next((where[f] for f in fields for where in (sample.values, sample.extras)
                          if where.get(f) is not None), None))


def as_score(value) -> float:
    """A score as a finite float, NaN when it is missing or not a number."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def embedding_of(sample: Sample, names: tuple[str, ...]) -> np.ndarray | None:
    """The first of the named image embeddings the sample has, as fp16 (None without one)."""
    vector = next((sample.vectors[n] for n in names if n in sample.vectors), None)
    if vector is None or np.ndim(vector) != 1 or not np.size(vector):
        return None
    return np.asarray(vector, dtype=np.float16)


class Signatures(SampleStage):
    """Batches in; kept batches, per-batch keys (and embeddings, eval matches) out."""

    name = "dedup"
    fields = FIELDS

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, batch: SampleBatch, eval_set: EvalSet | None = None):
        hashes: dict[int, int] = {}
        reasons = [self._sign(i, sample, hashes) for i, sample in enumerate(batch.samples)]
        if eval_set is not None:
            yield from self._decontaminate(batch.samples, hashes, reasons, eval_set)
        kept = [(i, s) for i, s in enumerate(batch.samples) if reasons[i] is None]
        keys = self._keys(batch.id, kept, hashes)
        if self.cfg.grouping:
            yield beam.pvalue.TaggedOutput(KEYS, keys)
        if self.cfg.semantic:
            yield from self._embeddings(keys, kept)
        self.counters.inc("dedup_in", len(batch.samples))
        yield from split_batch(batch, reasons, self.counters)

    def _sign(self, index: int, sample: Sample, hashes: dict[int, int]) -> str | None:
        if sample.image is None:
            return None
        try:
            if self.cfg.sha and sample.sha256 is None:
                sample.sha256 = hashlib.sha256(sample.image).hexdigest()
            if self.cfg.hashes_images:
                hashes[index] = phash(sample.image)
                sample.values[PHASH] = to_hex(hashes[index])
        except ValueError as e:  # decode_error | too_many_pixels
            return f"dedup:{e}"
        except Exception as e:  # bad data never crashes a run
            return f"dedup:error_{type(e).__name__}"
        return None

    def _decontaminate(self, samples, hashes, reasons, eval_set: EvalSet):
        matches: list[tuple[int, str, str, float]] = []
        rows = [i for i in hashes if reasons[i] is None]
        found, bits = eval_set.nearest(np.array([hashes[i] for i in rows], dtype=np.uint64))
        for i, item, distance in zip(rows, found.tolist(), bits.tolist()):
            if item >= 0 and distance <= self.cfg.eval_radius:
                matches.append(self._contaminated(samples[i], reasons, i, eval_set, item, "phash", distance))
        if self.cfg.eval_cosine is not None:
            vectors = {i: embedding_of(s, self.cfg.embeddings) for i, s in enumerate(samples) if reasons[i] is None}
            rows = [i for i, v in vectors.items() if v is not None]
            if rows:
                found, cosine = eval_set.most_similar(np.stack([vectors[i] for i in rows]))
                for i, item, cos in zip(rows, found.tolist(), cosine.tolist()):
                    if item >= 0 and cos >= self.cfg.eval_cosine:
                        matches.append(self._contaminated(samples[i], reasons, i, eval_set, item,
                                                          "embedding", 1.0 - cos))
        if matches:
            yield beam.pvalue.TaggedOutput(EVAL_MATCHES, matches)

    @staticmethod
    def _contaminated(sample: Sample, reasons, i: int, eval_set: EvalSet, item: int, kind: str, distance):
        reasons[i] = "dedup:eval_contamination"
        sample.values[EVAL_ITEM] = eval_set.keys[item]
        sample.values[DISTANCE] = float(distance)
        return item, sample.uid, kind, float(distance)

    def _keys(self, batch_id: str, kept: list[tuple[int, Sample]], hashes: dict[int, int]) -> np.ndarray:
        keys = np.zeros(len(kept), dtype=K.KEY_DTYPE)
        samples = [s for _, s in kept]
        keys["batch"] = K.batch_key(batch_id)
        keys["pos"] = np.arange(len(kept))
        keys["uid"] = [s.uid.encode() for s in samples]
        keys["score"] = [score_of(s, self.cfg.score_fields) for s in samples]
        if self.cfg.url:
            keys["url"] = [K.url_digest(s.url) for s in samples]
        if self.cfg.sha:
            keys["sha"] = [K.sha_digest(s.sha256) for s in samples]
        keys["phash"] = [hashes.get(i, 0) for i, _ in kept]
        keys["has_phash"] = [i in hashes for i, _ in kept]
        return keys

    def _embeddings(self, keys: np.ndarray, kept: list[tuple[int, Sample]]):
        rows, vectors = [], []
        for pos, (_, sample) in enumerate(kept):
            vector = embedding_of(sample, self.cfg.embeddings)
            if vector is not None:
                rows.append(pos)
                vectors.append(vector)
        self.counters.inc("dedup_without_embedding", len(kept) - len(rows))
        if rows:
            yield beam.pvalue.TaggedOutput(EMBEDDINGS, (keys[rows], np.stack(vectors)))
