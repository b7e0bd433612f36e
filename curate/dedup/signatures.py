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
from curate.dedup.options import DedupSettings
from curate.hashes.phash import phash, to_hex
from curate.dedup.reasons import EVAL_CONTAMINATION, NAME, WITHOUT_EMBEDDING, reason
from curate.io.spill import BatchRef, fetch_batch
from curate.sample import Sample, SampleBatch
from curate.stage import Judge

KEYS = "keys"  # tagged output: one keys array per batch
EMBEDDING_ROWS = "embedding_rows"  # tagged output: (keys, fp16 embeddings) of the rows that have one
EVAL_MATCHES = "eval_matches"  # tagged output: [(eval item index, uid, "phash" | "embedding", distance)]

PHASH = "phash"
KEEPER = "dedup_keeper"
DISTANCE = "dedup_distance"
EVAL_ITEM = "dedup_eval_item"
CONTAMINATED = reason(EVAL_CONTAMINATION)
FIELDS = {PHASH: pa.string(), KEEPER: pa.string(), DISTANCE: pa.float32(), EVAL_ITEM: pa.string()}


def scores_of(batch: SampleBatch, fields: tuple[str, ...]) -> np.ndarray:
    """Per row, the first of `fields` it has: computed in this run, else an input column (e.g.
    the clip_score a scored run wrote into the shards being deduplicated); NaN without one."""
    columns = [column for f in fields for group in (batch.values, batch.extras) if group.get(f) is not None
               for column in [batch.value_column(f) if group is batch.values else batch.extra_column(f)]]
    scores = np.full(len(batch), np.nan, dtype=np.float32)
    for i in range(len(batch)):
        scores[i] = as_score(next((c[i] for c in columns if c[i] is not None), None))
    return scores


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


class _Signed:
    """What judging one batch found beside its decisions, by sample position: its pHash, its eval match."""

    __slots__ = ("hashes", "matches")

    def __init__(self):
        self.hashes: dict[int, int] = {}  # sample.pos -> pHash
        self.matches: dict[int, tuple[int, str, float]] = {}  # sample.pos -> (eval item, kind, distance)


class Signatures(Judge):
    """Batches in; kept batches, per-batch keys (and embeddings, eval matches) out.

    Side input: the EvalSet (or none). Keys name each kept sample by its position in the kept
    batch, the batch ApplyDecisions finds them in again.
    """

    name = NAME

    def __init__(self, cfg: DedupSettings):
        self.cfg = cfg

    def batches(self, element, eval_set: EvalSet | None = None):
        # a batch that waited parked for the eval set arrives as its BatchRef
        batch = fetch_batch(element) if isinstance(element, BatchRef) else element
        yield batch, (eval_set, _Signed())

    def judge_batch(self, batch: SampleBatch, eval_set: EvalSet | None = None, signed: _Signed | None = None):
        signed = signed if signed is not None else _Signed()
        if batch.core["image"] is None:  # no row has an image (text-only curation): nothing to sign
            return [None] * len(batch)
        details = [self._sign(sample, signed.hashes) for sample in batch]
        if eval_set is not None:
            self._decontaminate(batch.samples, details, eval_set, signed)
        return details

    def outputs(self, batch: SampleBatch, reasons, eval_set: EvalSet | None = None, signed: _Signed | None = None):
        kept_rows = [i for i, r in enumerate(reasons) if r is None]
        kept = batch.take(kept_rows)
        hashes = signed.hashes if signed is not None else {}
        keys = self._keys(batch.id, kept, [hashes.get(i) for i in kept_rows])
        if self.cfg.grouping:
            yield beam.pvalue.TaggedOutput(KEYS, keys)
        if self.cfg.semantic:
            yield from self._embeddings(keys, kept)
        if signed is not None and signed.matches:
            matches = [(item, s.uid, kind, distance) for s, r in zip(batch.samples, reasons)
                       if r == CONTAMINATED and s.pos in signed.matches
                       for item, kind, distance in [signed.matches[s.pos]]]
            if matches:
                yield beam.pvalue.TaggedOutput(EVAL_MATCHES, matches)

    def _sign(self, sample: Sample, hashes: dict[int, int]) -> str | None:
        if sample.image is None:
            return None
        if self.cfg.sha and sample.sha256 is None:
            sample.sha256 = hashlib.sha256(sample.image).hexdigest()
        if self.cfg.hashes_images:
            try:
                value = phash(sample.image)
            except ValueError as e:  # decode_error | too_many_pixels
                return str(e)
            hashes[sample.pos] = value
            sample.values[PHASH] = to_hex(value)
        return None

    def _decontaminate(self, samples: list[Sample], details: list, eval_set: EvalSet, signed: _Signed) -> None:
        rows = [s for s, d in zip(samples, details) if d is None and s.pos in signed.hashes]
        found, bits = eval_set.nearest(np.array([signed.hashes[s.pos] for s in rows], dtype=np.uint64))
        for sample, item, distance in zip(rows, found.tolist(), bits.tolist()):
            if item >= 0 and distance <= self.cfg.eval_radius:
                self._contaminated(sample, eval_set, item, "phash", distance, signed)
        if self.cfg.eval_cosine is not None:
            left = [s for s, d in zip(samples, details) if d is None and s.pos not in signed.matches]
            vectors = [(s, embedding_of(s, self.cfg.embeddings)) for s in left]
            vectors = [(s, v) for s, v in vectors if v is not None]
            if vectors:
                found, cosine = eval_set.most_similar(np.stack([v for _, v in vectors]))
                for (sample, _), item, cos in zip(vectors, found.tolist(), cosine.tolist()):
                    if item >= 0 and cos >= self.cfg.eval_cosine:
                        self._contaminated(sample, eval_set, item, "embedding", 1.0 - cos, signed)
        for i, sample in enumerate(samples):
            if sample.pos in signed.matches:
                details[i] = EVAL_CONTAMINATION

    @staticmethod
    def _contaminated(sample: Sample, eval_set: EvalSet, item: int, kind: str, distance, signed: _Signed) -> None:
        sample.values[EVAL_ITEM] = eval_set.keys[item]
        sample.values[DISTANCE] = float(distance)
        signed.matches[sample.pos] = (item, kind, float(distance))

    def _keys(self, batch_id: str, kept: SampleBatch, hashes: list) -> np.ndarray:
        """One key row per kept sample, from its columns; `pos` is its place in the kept batch."""
        keys = np.zeros(len(kept), dtype=K.KEY_DTYPE)
        keys["batch"] = K.batch_key(batch_id)
        keys["pos"] = np.arange(len(kept))
        keys["uid"] = [u.encode() for u in kept.column("uid")]
        keys["score"] = scores_of(kept, self.cfg.score_fields)
        if self.cfg.url:
            keys["url"] = [K.url_digest(u) for u in kept.column("url")]
        if self.cfg.sha:
            keys["sha"] = [K.sha_digest(h) for h in kept.column("sha256")]
        keys["phash"] = [h or 0 for h in hashes]
        keys["has_phash"] = [h is not None for h in hashes]
        return keys

    def _embeddings(self, keys: np.ndarray, kept: SampleBatch):
        rows, vectors = kept.first_vectors(self.cfg.embeddings)
        self.counters.inc(WITHOUT_EMBEDDING, len(kept) - len(rows))
        if len(rows):
            yield beam.pvalue.TaggedOutput(EMBEDDING_ROWS, (keys[rows], vectors))
