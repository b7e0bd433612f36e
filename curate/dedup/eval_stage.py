"""Read the eval images into one EvalSet (a side input), and report what matched them."""
from __future__ import annotations

import apache_beam as beam
import numpy as np

from curate.dedup.eval_set import EvalSet, summarize
from curate.hashes.phash import phash
from curate.dedup.signatures import embedding_of
from curate.io.source import Source
from curate.sample import SampleBatch
from curate.ledger_layout import batch_id


PLACEHOLDER_CAPTION = "an image"  # the scoring model wants a caption; an eval image may have none
_OWN_CAPTION = "_eval_caption"


def caption_for_scoring(batch: SampleBatch) -> SampleBatch:
    for sample in batch.samples:
        sample.values[_OWN_CAPTION] = sample.caption
        sample.caption = sample.caption or PLACEHOLDER_CAPTION
    return batch


def hash_eval_batch(batch: SampleBatch, vector_names: tuple[str, ...] = ()) -> EvalSet:
    keys, captions, hashes, vectors, unreadable = [], [], [], [], 0
    for sample in batch.samples:
        try:
            value = phash(sample.image) if sample.image is not None else None
        except ValueError:
            value = None
        vector = embedding_of(sample, vector_names) if vector_names else None
        if value is None or (vector_names and vector is None):
            unreadable += 1
            continue
        keys.append(sample.source_key or sample.url or sample.uid)
        captions.append(sample.values.get(_OWN_CAPTION, sample.caption))
        hashes.append(value)
        vectors.append(vector)
    embeddings = np.stack(vectors) if vector_names and vectors else None
    return EvalSet(keys, captions, np.array(hashes, dtype=np.uint64), unreadable, embeddings)


def _merge(sets) -> EvalSet:
    merged = EvalSet()
    for one in sets:
        merged = merged.merged(one)
    return merged


def read_eval_file(indexed_path, source: Source, batch_size: int):
    """Batches of every row of one eval file: a missing caption does not matter for an eval image."""
    index, path = indexed_path
    samples, first = [], 0
    for row, (sample, _) in enumerate(source.read(path)):
        samples.append(sample)
        if len(samples) == batch_size:
            yield SampleBatch(batch_id(index, first), samples)
            samples, first = [], row + 1
    if samples:
        yield SampleBatch(batch_id(index, first), samples)


class ReadEvalSet(beam.PTransform):
    """Eval source -> a PCollection of one EvalSet, sorted by key (the same on every run).

    `fetch`: the download stage, for eval URL lists; `embed`: the scoring model (for
    --eval_cosine), whose `vector_names` embeddings are kept. Their failures count as unreadable.
    """

    def __init__(self, source: Source, batch_size: int, fetch: beam.PTransform | None = None,
                 embed: beam.PTransform | None = None, vector_names: tuple[str, ...] = ()):
        super().__init__()
        self.source = source
        self.batch_size = batch_size
        self.fetch = fetch
        self.embed = embed
        self.vector_names = vector_names if embed is not None else ()

    def expand(self, p):
        batches = (p | "EvalFiles" >> beam.Create(list(enumerate(self.source.files)))
                   | "ReadEval" >> beam.FlatMap(read_eval_file, self.source, self.batch_size))
        failed = []
        for label, stage in (("FetchEval", self.fetch), ("EmbedEval", self.embed)):
            if stage is None:
                continue
            if label == "EmbedEval":
                batches = batches | "EvalCaptions" >> beam.Map(caption_for_scoring)
            out = batches | label >> stage
            batches = out.kept
            failed += [d | f"Count{label}Failures{i}" >> beam.Map(lambda part: EvalSet(unreadable=part[1].num_rows))
                       for i, d in enumerate(out.dropped)]
        hashed = batches | "HashEval" >> beam.Map(hash_eval_batch, self.vector_names)
        return ((hashed, *failed) | "AllEval" >> beam.Flatten()
                | "MergeEval" >> beam.CombineGlobally(_merge) | "SortEval" >> beam.Map(EvalSet.sorted))


def eval_facts(matches, eval_set, radius: int, source: str, cosine: float | None):
    pairs = [m for batch in matches for m in batch]
    return "eval", summarize(eval_set, pairs, radius, source, cosine)
