"""Wire the end of every recipe: ledger, shards, curated URL list, stats.json.

Nothing heavy waits in a runner or goes through a shuffle: kept batches become fragments on
storage where they are (fragments.py), ledger and URL rows are parked per part and only their
file names are grouped, and shards are numbered from per-batch counts (shard_plan.py).
"""
from __future__ import annotations

import concurrent.futures
import os
import time
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
from apache_beam.transforms.window import GlobalWindows

from curate.io import spill
from curate.io.curated_urls import write_url_part
from curate.io.duplicate_rows import DuplicateRows, uid_rows
from curate.io.fragments import FinishFragment, WriteFragment
from curate.io.ledger import write_ledger_part
from curate.io.run_stats import assemble, write_stats
from curate.io.shard_plan import plan_shards, write_shard
from curate.io.shard_format import write_sizes
from curate.ledger_layout import ledger_part_of


@dataclass
class OutputConfig:
    output: str
    schema: pa.Schema
    output_format: str  # "webdataset" | "parquet"
    samples_per_shard: int
    header: dict  # recipe, source, output, runner, seed: what stats.json says of the run before it starts
    url_columns: tuple[str, str] = ("url", "caption")  # the input's names, reused in the URL list
    started: float | None = None  # time.time() when the run started: stats.json's wall_time_s


class WriteParts(beam.PTransform):
    """(batch id, Arrow rows) PCollections from anywhere -> one file per ledger part.

    Each input is parked where it is produced (a Flatten of the rows themselves would be held
    whole by the local runner), named by its input and batch (a retried bundle rewrites the same
    file; two stages' rows of one batch never collide); only (part, file name) pairs are
    flattened and grouped.
    """

    def __init__(self, kind: str, output: str, write):
        super().__init__()
        self.kind = kind
        self.output = output
        self.write = write

    def expand(self, row_pcolls):
        kind, output, write = self.kind, self.output, self.write
        if isinstance(row_pcolls, beam.pvalue.PCollection):
            row_pcolls = [row_pcolls]
        parked = tuple(rows | f"Park{i}" >> beam.Map(_park_rows, output, kind, str(i))
                       for i, rows in enumerate(row_pcolls))
        return (
            parked | "AllParked" >> beam.Flatten()
            | "GroupByPart" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(_WriteSideBySide(write))
        )


class _WriteSideBySide(beam.DoFn):
    """Each part fetched, sorted and written on a thread of its own (Arrow's sort and Parquet's
    encoding and compression release the GIL), so a worker writes its parts side by side; the
    parts' summaries leave when the bundle ends. A worker holds at most one part per thread."""

    def __init__(self, write):
        self.write = write

    def setup(self):
        self.pool = concurrent.futures.ThreadPoolExecutor(max(2, os.cpu_count() or 1),
                                                          thread_name_prefix="curate-write")

    def start_bundle(self):
        self.pending = []

    def process(self, part_paths):
        part, paths = part_paths
        self.pending.append(self.pool.submit(self._write, part, sorted(set(paths))))

    def _write(self, part: str, paths: list[str]) -> dict:
        return self.write(part, [spill.fetch(p) for p in paths])

    def finish_bundle(self):
        pending, self.pending = self.pending, []
        for future in pending:
            yield GlobalWindows.windowed_value(future.result())

    def teardown(self):
        self.pool.shutdown()


def _park_rows(element, output: str, kind: str, source: str) -> tuple[str, str]:
    batch_id, rows = element
    part = ledger_part_of(batch_id)
    return part, spill.park(spill.rows_path(output, kind, part, f"{source}-{batch_id}"), rows)


def write_outputs(p, kept, dropped: list, facts: dict, cfg: OutputConfig):
    """Everything kept goes to shards (with images) or the URL list (without); every row to the ledger."""
    fragments = kept | "Fragment" >> beam.ParDo(WriteFragment(cfg.output, cfg.schema, cfg.output_format))
    duplicates = (fragments | "UidRows" >> beam.Map(lambda f: uid_rows(f.id, f.uids))
                  | "DuplicateRows" >> DuplicateRows())
    finished = (
        {"fragment": fragments | "ById" >> beam.Map(lambda f: (f.id, f.id)), "duplicates": duplicates}
        | "JoinDuplicates" >> beam.CoGroupByKey()
        | "Finish" >> beam.ParDo(FinishFragment(cfg.output))
    )
    ledger = (
        (*dropped, finished | "LedgerRows" >> beam.Map(lambda f: (f.id, f.ledger)))
        | "WriteLedger" >> WriteParts("ledger", cfg.output, lambda part, rows: write_ledger_part(
            part, rows, cfg.output, cfg.schema))
    )
    urls = ((finished | "UrlRows" >> beam.FlatMap(lambda f: [(f.id, f.urls)] if f.urls is not None else []),)
            | "WriteUrls" >> WriteParts("urls", cfg.output, lambda part, rows: write_url_part(
                part, rows, cfg.output, cfg.schema, cfg.url_columns)))
    shards = (
        finished | "ForPlan" >> beam.FlatMap(lambda f: [f.for_plan()] if f.images else [])
        | "BatchCounts" >> beam.combiners.ToList()
        | "PlanShards" >> beam.FlatMap(plan_shards, cfg.samples_per_shard)
        | "SpreadShards" >> beam.Reshuffle()
        | "WriteShards" >> beam.Map(write_shard, cfg.output, cfg.schema, cfg.output_format)
    )
    fact_inputs = {name: beam.pvalue.AsSingleton(pc) for name, pc in facts.items()}
    names = sorted(fact_inputs)
    return (
        p | "StatsTrigger" >> beam.Create([None])
        | "WriteStats" >> beam.Map(
            _write_stats, cfg, names, beam.pvalue.AsList(ledger), beam.pvalue.AsList(shards),
            beam.pvalue.AsList(urls), *[fact_inputs[n] for n in names])
    )


def _write_stats(_, cfg: OutputConfig, names, ledger, shards, urls, *facts):
    stats = assemble(list(ledger), list(shards), list(urls), dict(zip(names, facts)), cfg.header)
    if cfg.started is not None:  # written once, here: run.py only reads stats.json
        stats["wall_time_s"] = round(time.time() - cfg.started, 3)
    if stats["shards"]:
        write_sizes(cfg.output, stats["shards"])
    write_stats(cfg.output, stats)
    spill.remove_all(cfg.output)  # every stage that parked batches is done by now
    return stats
