"""What every input source shares: rows to Samples, validation, batching into SampleBatches.

A source lists its files before the pipeline starts (so a missing input fails with exit 2),
reports the extra columns it carries, and reads one file as `(sample, reason)` pairs. The
ReadSamples transform plans read tasks (a whole file, or a block of rows of a file a source
can read by range), reads them in parallel and cuts them into fixed-size batches whose ids
depend only on (file index, row index). A source may read a task column by column
(`read_batches`): a Parquet URL list never builds a Python object per row.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Iterator

import apache_beam as beam
import pyarrow as pa

from curate.io.run_schema import to_json
from curate.io.safe_paths import DEFAULT_MAX_BYTES
from curate.io.utf8 import clean_text
from curate.sample import Sample, SampleBatch, make_uid
from curate.ledger_layout import batch_id
from curate.io.verdicts import DROPPED, ReasonCounters, StageOutput, split_batch

Row = tuple[Sample, "str | None"]
Task = tuple[int, str, "tuple[int, int] | None"]  # (file index, path, (first row, rows) or the whole file)


class Source:
    """Base of the input readers."""

    kind = "source"
    needs_download = False  # True when samples arrive as URLs without image bytes
    url_col: str | None = None  # the input's own column names, where it has columns
    caption_col: str | None = None
    max_bytes = DEFAULT_MAX_BYTES  # the largest image (file or tar member) read: --max_image_bytes

    def __init__(self, files: list[str]):
        self.files = files

    def extra_columns(self) -> dict[str, pa.DataType]:
        return {}

    def read(self, path: str) -> Iterator[Row]:
        raise NotImplementedError

    def tasks(self, index: int, path: str, batch_size: int) -> Iterator[Task]:
        """The read tasks of one file: the whole file, unless a source reads blocks of rows."""
        yield index, path, None

    def read_batches(self, task: Task, batch_size: int) -> Iterator[tuple[SampleBatch, list]]:
        """(batch, a reason per row) of each batch of a task: its rows cut into batch_size slices."""
        index, path, _ = task
        samples, reasons, first = [], [], 0
        for sample, reason in self.read(path):
            samples.append(sample)
            reasons.append(reason)
            if len(samples) == batch_size:
                yield SampleBatch(batch_id(index, first), samples), reasons
                samples, reasons, first = [], [], first + batch_size
        if samples:
            yield SampleBatch(batch_id(index, first), samples), reasons

    def describe(self) -> str:
        return f"{self.kind}: {len(self.files)} file(s)"

    def url_caption_columns(self) -> tuple[str, str]:
        """The input's own names for url and caption, used again in the curated URL list."""
        return self.url_col or "url", self.caption_col or "caption"


def decode_caption(raw: Any) -> tuple[str | None, str | None]:
    """A caption as text, and the reason it is unusable (None when it is fine)."""
    if raw is None:
        return None, "input:missing_caption"
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace"), "input:non_utf8_caption"
    elif not isinstance(raw, str):
        raw = str(raw)
    cleaned = clean_text(raw)  # lone surrogates from a surrogateescape'd read
    if cleaned is not raw:
        return cleaned, "input:non_utf8_caption"
    if not raw.strip():
        return raw, "input:empty_caption"
    return raw, None


def url_text(value: Any) -> str:
    """A URL that is not text (an integer id, bytes) as its text: fetched or refused like any
    other, never silently lost."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")  # a bad byte makes it input:non_utf8_url
    return str(value) if isinstance(value, (int, float)) else to_json(value)


def make_sample(*, url: Any, caption: Any, source_key: str | None, extras: dict[str, Any],
                image: bytes | None = None, require_url: bool = False,
                identity: str | None = None) -> Row:
    """One input row as a Sample, with the reason it cannot be curated (or None).

    The uid comes from the url, else `identity` (where the key alone is not unique), else the key;
    a row with none of them would take its uid from its caption alone, shared by every such row
    with that caption, so a reader passes where the row is (`<file>:<line>`) as its identity.
    """
    text, problem = decode_caption(caption)
    if url is not None and not isinstance(url, str):
        url = url_text(url)
    if isinstance(url, str) and url.strip():
        cleaned = clean_text(url)
        if cleaned is not url and problem is None and (require_url or image is None):
            problem = "input:non_utf8_url"  # not the address it meant: never fetched
        url = cleaned
    else:
        url = None
    if problem is None and require_url and url is None:
        problem = "input:missing_url"
    sample = Sample(uid=make_uid(url or identity or source_key, text), url=url, caption=text,
                    source_key=source_key, image=image, extras=extras)
    return sample, problem


def refused_file(key: str, reason: str, extras: dict[str, Any] | None = None) -> Row:
    """An input file that is never opened (safe_paths: outside the input folder, not a regular
    file) as its one ledger row."""
    return make_sample(url=None, caption=None, source_key=key, extras=extras or {})[0], reason


class Progress:
    """A line on stderr every PERIOD seconds of a long read, per worker process."""

    PERIOD = 30.0

    def __init__(self):
        self.rows = 0
        self.started = self.last = time.monotonic()

    def add(self, n: int) -> None:
        self.rows += n
        now = time.monotonic()
        if now - self.last >= self.PERIOD:
            self.last = now
            rate = self.rows / (now - self.started)
            print(f"curate: read {self.rows:,} rows ({rate:,.0f}/s)", file=sys.stderr, flush=True)


class _ReadTask(beam.DoFn):
    def __init__(self, source: Source, batch_size: int):
        self.source = source
        self.batch_size = batch_size

    def setup(self):
        self.counters = ReasonCounters()
        self.progress = Progress()

    def process(self, task: Task):
        for batch, reasons in self.source.read_batches(task, self.batch_size):
            self.counters.inc("inputs", len(batch))
            self.progress.add(len(batch))
            yield from split_batch(batch, reasons, self.counters)


class ReadSamples(beam.PTransform):
    """Source files -> StageOutput(SampleBatch PCollection, [dropped ledger rows])."""

    def __init__(self, source: Source, batch_size: int):
        super().__init__()
        self.source = source
        self.batch_size = batch_size

    def expand(self, p):
        source, batch_size = self.source, self.batch_size
        out = (
            p
            | "ListFiles" >> beam.Create(list(enumerate(source.files)))
            | "PlanTasks" >> beam.FlatMapTuple(lambda index, path: source.tasks(index, path, batch_size))
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadTask(source, batch_size)).with_output_types(
                SampleBatch).with_outputs(DROPPED, main="kept")
        )
        return StageOutput(out.kept, [out[DROPPED]])
