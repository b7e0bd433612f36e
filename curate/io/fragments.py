"""Fragments: what the worker holding a batch's images writes before shard numbers exist.

Images never travel to a shard writer. The last stage's worker turns each kept batch into a
fragment under `<output>/_spill/fragments/`: the tar records of its samples (or, for Parquet
output, their bytes in an Arrow file), their sidecar rows and the batch's ledger rows. Only
each batch's uids (one array per part, io/duplicate_rows.py) and per-batch counts travel on: the
engine groups them so that two rows that are one sample never both reach a shard (the later one is `input:duplicate_row`),
and a small global step over per-batch counts numbers the shards (shard_plan.py), which are
then assembled by copying the fragments' bytes.
"""
from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.io.duplicate_rows import DUPLICATE_ROW
from curate.io import files as fs
from curate.io import spill
from curate.io.ledger_batch import ledger_batch
from curate.io.shard_format import sample_members, sidecar_row, sidecar_schema, tar_record
from curate.io.run_schema import rows_to_table
from curate.sample import SampleBatch
from curate.ledger_layout import ledger_part_of
from curate.io.verdicts import ReasonCounters

# private sidecar columns: row in the batch's ledger rows, byte range in the tar fragment, image facts
ROW, START, END, IMAGE_BYTES, FORMAT, IMAGE = "_row", "_start", "_end", "_image_bytes", "_format", "_image"
HAS_IMAGE = "_has_image"


class Fragment(NamedTuple):
    id: str  # the batch id
    uids: list[str]  # of its kept rows, in fragment order


class Finished(NamedTuple):
    id: str
    images: int  # rows that go to shards, after duplicate rows left
    sidecar: str | None  # path of their sidecar rows (with byte ranges)
    part: str  # the ledger part of the batch
    ledger: pa.RecordBatch  # ledger rows of its kept and duplicate rows
    urls: pa.RecordBatch | None  # curated URL rows (kept rows without an image)

    def for_plan(self) -> "Finished":
        """What the shard planner needs (rows left out: it holds one of these per batch)."""
        return self._replace(ledger=None, urls=None)


def fragment_path(output: str, batch_id: str, suffix: str) -> str:
    return fs.join(output, spill.SPILL_DIR, "fragments", f"{batch_id}.{suffix}")


class WriteFragment(beam.DoFn):
    """Kept batch -> its fragment on storage; emits the batch id and the uids of its rows."""

    def __init__(self, output: str, schema: pa.Schema, fmt: str):
        self.output = output
        self.schema = schema
        self.fmt = fmt

    def process(self, batch: SampleBatch):
        uids = batch.column("uid")
        batch = batch.take(sorted(range(len(batch)), key=uids.__getitem__))  # stable: equal uids keep input order
        ledger = ledger_batch(batch)
        images = batch.column("image")
        has_image = pa.array([image is not None for image in images], pa.bool_())
        spill.park(fragment_path(self.output, batch.id, "ledger.arrow"), ledger.append_column(HAS_IMAGE, has_image))
        with_image = [(i, s) for i, s in enumerate(batch.samples) if images[i] is not None]
        if with_image:
            spill.park(fragment_path(self.output, batch.id, "sidecar.arrow"), self._images(batch.id, with_image))
        # one output (split by cheap Maps after): Beam's Dask runner runs a multi-output DoFn once per output
        yield Fragment(batch.id, batch.column("uid"))

    def _images(self, batch_id: str, with_image) -> pa.RecordBatch:
        rows = [sidecar_row(s) for _, s in with_image]
        extra = {ROW: [i for i, _ in with_image], IMAGE_BYTES: [len(s.image) for _, s in with_image],
                 FORMAT: [s.image_format for _, s in with_image]}
        if self.fmt == "parquet":
            extra[IMAGE] = [s.image for _, s in with_image]
        else:
            starts, ends, offset = [], [], 0
            with fs.atomic_write(fragment_path(self.output, batch_id, "tar")) as f:
                for row, (_, sample) in zip(rows, with_image):
                    starts.append(offset)
                    for name, data in sample_members(sample, row):
                        record = tar_record(name, data)
                        f.write(record)
                        offset += len(record)
                    ends.append(offset)
            extra[START], extra[END] = starts, ends
        table = rows_to_table(rows, sidecar_schema(self.schema))
        for name, values in extra.items():
            table = table.append_column(name, pa.array(values))
        return table.combine_chunks().to_batches()[0]


class FinishFragment(beam.DoFn):
    """A fragment and its duplicate rows -> ledger rows, curated URL rows, and what goes to shards."""

    def __init__(self, output: str):
        self.output = output

    def setup(self):
        self.counters = ReasonCounters()

    def process(self, joined):
        batch_id, parts = joined
        if not parts["fragment"]:
            return
        duplicates = np.array(sorted(set(parts["duplicates"])), dtype=np.int64)
        ledger = spill.fetch(fragment_path(self.output, batch_id, "ledger.arrow"))
        is_dup = np.zeros(ledger.num_rows, dtype=bool)
        is_dup[duplicates] = True
        has_image = ledger.column(HAS_IMAGE).to_numpy(zero_copy_only=False)
        ledger = ledger.drop_columns([HAS_IMAGE])
        if is_dup.any():
            self.counters.inc(f"dropped_{DUPLICATE_ROW}", int(is_dup.sum()))
            ledger = _mark_duplicates(ledger, is_dup)
        urls = ~has_image & ~is_dup
        url_rows = ledger.filter(pa.array(urls)) if urls.any() else None
        path, images = None, 0
        if (has_image & ~is_dup).any():
            path = fragment_path(self.output, batch_id, "sidecar.arrow")
            sidecar = spill.fetch(path)
            if is_dup.any():
                keep = ~pc.is_in(sidecar.column(ROW), value_set=pa.array(duplicates)).to_numpy(zero_copy_only=False)
                sidecar = sidecar.filter(pa.array(keep))
                path = spill.park(fragment_path(self.output, batch_id, "shard.arrow"), sidecar)
            images = sidecar.num_rows
        yield Finished(batch_id, images, path, ledger_part_of(batch_id), ledger, url_rows)


def _mark_duplicates(ledger: pa.RecordBatch, is_dup: np.ndarray) -> pa.RecordBatch:
    mask = pa.array(is_dup)
    columns = dict(zip(ledger.schema.names, ledger.columns))
    columns["status"] = pc.if_else(mask, "dropped", columns["status"])
    columns["reason"] = pc.if_else(mask, DUPLICATE_ROW, columns["reason"].cast(pa.string()))
    return pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))

