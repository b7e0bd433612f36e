"""Wire the end of every recipe: ledger, shards, curated URL list, stats.json."""
from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa

from curate.io import spill
from curate.io.curated_urls import write_url_part
from curate.io.ledger import write_ledger_part
from curate.io.run_stats import assemble, write_stats
from curate.io.shards import shard_count, shard_of, write_shard, write_sizes
from curate.io.ledger_batch import samples_to_batch
from curate.sample import SampleBatch


@dataclass
class OutputConfig:
    output: str
    schema: pa.Schema
    output_format: str  # "webdataset" | "parquet"
    samples_per_shard: int
    run: dict  # recipe, options and other facts known before the run
    url_columns: tuple[str, str] = ("url", "caption")  # the input's names, reused in the URL list


def _kept_rows(batch: SampleBatch):
    return batch.ledger_part, samples_to_batch(batch.samples, [None] * len(batch.samples))


def _url_rows(batch: SampleBatch):
    without_image = [s for s in batch.samples if s.image is None]
    if without_image:
        yield batch.ledger_part, samples_to_batch(without_image, [None] * len(without_image))


def _with_images(batch: SampleBatch):
    samples = [s for s in batch.samples if s.image is not None]
    if samples:
        yield SampleBatch(batch.id, samples)


def _to_shards(batch: SampleBatch, shards: int):
    for sample in batch.samples:
        yield shard_of(sample.uid, shards), sample


def write_outputs(p, kept, dropped: list, facts: dict, cfg: OutputConfig, written: dict | None = None):
    """Everything kept goes to shards (with images) or the URL list (without); every row to the ledger.

    `written`: summaries of ledger and URL parts that a recipe's own graph already wrote.
    """
    written = written or {}
    kept_rows = kept | "KeptRows" >> beam.Map(_kept_rows)
    ledger = (
        (*dropped, kept_rows) | "AllLedgerRows" >> beam.Flatten()
        | "GroupLedgerParts" >> beam.GroupByKey()
        | "WriteLedger" >> beam.Map(lambda kv: write_ledger_part(*kv, cfg.output, cfg.schema))
    )
    urls = (
        kept | "UrlRows" >> beam.FlatMap(_url_rows)
        | "GroupUrlParts" >> beam.GroupByKey()
        | "WriteUrls" >> beam.Map(lambda kv: write_url_part(*kv, cfg.output, cfg.schema, cfg.url_columns))
    )
    # only batches holding images continue to the shard writer: a text-only run buffers nothing here
    images = kept | "WithImages" >> beam.FlatMap(_with_images).with_output_types(SampleBatch)
    n_shards = (
        images | "CountImages" >> beam.Map(lambda b: len(b.samples))
        | "SumImages" >> beam.CombineGlobally(sum)
        | "ShardCount" >> beam.Map(shard_count, cfg.samples_per_shard)
    )
    shards = (
        images | "KeyByShard" >> beam.FlatMap(_to_shards, beam.pvalue.AsSingleton(n_shards))
        | "GroupShards" >> beam.GroupByKey()
        | "WriteShards" >> beam.Map(
            lambda kv: write_shard(kv[0], list(kv[1]), cfg.output, cfg.schema, cfg.output_format))
    )
    ledger = (ledger, *written.get("ledger", ())) | "AllLedgerParts" >> beam.Flatten()
    urls = (urls, *written.get("urls", ())) | "AllUrlParts" >> beam.Flatten()
    fact_inputs = {name: beam.pvalue.AsSingleton(pc) for name, pc in facts.items()}
    names = sorted(fact_inputs)
    return (
        p | "StatsTrigger" >> beam.Create([None])
        | "WriteStats" >> beam.Map(
            _write_stats, cfg, names, beam.pvalue.AsList(ledger), beam.pvalue.AsList(shards),
            beam.pvalue.AsList(urls), *[fact_inputs[n] for n in names])
    )


def _write_stats(_, cfg: OutputConfig, names, ledger, shards, urls, *facts):
    stats = assemble(list(ledger), list(shards), list(urls), dict(zip(names, facts)), cfg.run)
    if stats["shards"]:
        write_sizes(cfg.output, stats["shards"])
    write_stats(cfg.output, stats)
    spill.remove_all(cfg.output)  # every stage that parked batches is done by now
    return stats
