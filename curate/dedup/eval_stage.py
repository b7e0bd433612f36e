"""Read the eval images into one EvalSet (a side input), and report what matched them."""
from __future__ import annotations

import apache_beam as beam
import numpy as np

from curate.dedup.eval_set import EvalSet, summarize
from curate.dedup.phash import phash
from curate.io.source import Source
from curate.sample import SampleBatch, batch_id


def hash_eval_batch(batch: SampleBatch) -> EvalSet:
    keys, captions, hashes, unreadable = [], [], [], 0
    for sample in batch.samples:
        try:
            value = phash(sample.image) if sample.image is not None else None
        except ValueError:
            value = None
        if value is None:
            unreadable += 1
            continue
        keys.append(sample.source_key or sample.url or sample.uid)
        captions.append(sample.caption)
        hashes.append(value)
    return EvalSet(keys, captions, np.array(hashes, dtype=np.uint64), unreadable)


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

    `fetch`: the download stage, for eval URL lists; its failures count as unreadable items.
    """

    def __init__(self, source: Source, batch_size: int, fetch: beam.PTransform | None = None):
        super().__init__()
        self.source = source
        self.batch_size = batch_size
        self.fetch = fetch

    def expand(self, p):
        batches = (p | "EvalFiles" >> beam.Create(list(enumerate(self.source.files)))
                   | "ReadEval" >> beam.FlatMap(read_eval_file, self.source, self.batch_size))
        unfetched = []
        if self.fetch is not None:
            fetched = batches | "FetchEval" >> self.fetch
            batches = fetched.kept
            unfetched = [d | f"CountUnfetched{i}" >> beam.Map(lambda part: EvalSet(unreadable=part[1].num_rows))
                         for i, d in enumerate(fetched.dropped)]
        hashed = batches | "HashEval" >> beam.Map(hash_eval_batch)
        return ((hashed, *unfetched) | "AllEval" >> beam.Flatten()
                | "MergeEval" >> beam.CombineGlobally(_merge) | "SortEval" >> beam.Map(EvalSet.sorted))


def eval_facts(matches, eval_set, radius: int, source: str):
    pairs = [m for batch in matches for m in batch]
    return "eval", summarize(eval_set, pairs, radius, source)
