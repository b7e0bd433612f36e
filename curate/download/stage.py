"""The download stage: URL-only samples of each batch fetched concurrently, one outcome each.

A batch waits for its slowest URL (a deadline, retries, a Retry-After), so one DoFn keeps
several batches in flight and emits each as soon as it is done: the network stays busy while a
batch's tail finishes. It blocks only when the worker has enough URLs queued (a few times the
concurrency) or holds too many samples of unfinished batches in memory. Samples that already have an image, or have
no URL, pass untouched. Per-host counts become the stage's facts in stats.json.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib.util
import sys
import time
from collections import Counter
from typing import NamedTuple
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from curate.blocklist.build import build_indexes, manifest_path
from curate.blocklist.names import FIELDS as BLOCK_FIELDS
from curate.blocklist.options import BlockListOptions, BlockSettings, block_settings
from curate.download.cache import remove_partial_files
from curate.download.options import DownloadSettings, DownloadOptions, download_settings
from curate.download.outcome import FIELDS, Outcome
from curate.errors import UsageError
from curate.sample import SampleBatch
from curate.stage import DROPPED, FETCHER, ReasonCounters, Stage, StageOutput, error_detail, split_batch

HOSTS = "hosts"
TOP_HOSTS = 50  # hosts listed in stats.json, by number of URLs
QUEUED_PER_SLOT = 4  # unfinished URLs per concurrent request before the DoFn waits
# samples of unfinished batches per concurrent request (a DoFn holds their images until the
# batch is done): bounds memory, e.g. 128 slots x 32 x 200 KB = 800 MB at most
HELD_PER_SLOT = 32


class _InFlight(NamedTuple):
    batch: SampleBatch
    todo: list[int]  # indices of the samples being fetched
    future: concurrent.futures.Future
    timestamp: object
    window: object


class _Progress:
    """A line on stderr every PERIOD seconds of a long download, per DoFn instance."""

    PERIOD = 30.0

    def __init__(self):
        self.urls = self.ok = 0
        self.started = self.last = time.monotonic()

    def add(self, urls: int, ok: int) -> None:
        self.urls += urls
        self.ok += ok
        now = time.monotonic()
        if now - self.last >= self.PERIOD:
            self.last = now
            print(f"curate: downloaded {self.urls:,} URLs, {self.ok / self.urls:.1%} ok "
                  f"({self.urls / (now - self.started):,.0f}/s)", file=sys.stderr, flush=True)


def _require_client() -> None:
    for module in ("aiohttp", "protego"):
        if importlib.util.find_spec(module) is None:
            raise UsageError(f"downloading needs {module}: pip install 'curate[download]'")


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower() or "?"
    except ValueError:
        return "?"


class DownloadBatches(beam.DoFn):
    def __init__(self, cfg: DownloadSettings, output: str | None):
        self.cfg = cfg
        self.output = output

    def setup(self):
        from curate.download.client import acquire  # aiohttp: imported on workers only

        self.client = acquire(self.cfg, self.output)
        self.counters = ReasonCounters()
        self.progress = _Progress()

    def teardown(self):
        from curate.download.client import release

        if getattr(self, "client", None) is not None:  # setup may have failed
            release(self.client)
            self.client = None

    def start_bundle(self):
        self.in_flight: list[_InFlight] = []

    def process(self, batch: SampleBatch, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        todo = [i for i, s in enumerate(batch.samples) if s.image is None and s.url]
        if not todo:
            yield batch
            return
        uids, urls = batch.column("uid"), batch.column("url")
        items = [(uids[i], urls[i]) for i in todo]
        self.in_flight.append(_InFlight(batch, todo, self.client.submit(batch.id, items), timestamp, window))
        yield from self._drain(wait=self._saturated)

    def finish_bundle(self):
        yield from self._drain(wait=lambda: True)

    def _saturated(self) -> bool:
        slots = self.cfg.concurrency
        return (self.client.pending_urls >= QUEUED_PER_SLOT * slots
                or sum(len(f.todo) for f in self.in_flight) >= HELD_PER_SLOT * slots)

    def _drain(self, wait):
        """Emit every finished batch; while `wait()` holds, wait for URLs to finish.

        Waiting is per URL, not per batch: a batch held up by one slow URL does not stop the
        next batch from starting once the others are done.
        """
        while self.in_flight:
            seen = self.client.progress
            done = [f for f in self.in_flight if f.future.done()]
            for finished in done:
                self.in_flight.remove(finished)
                yield from self._emit(finished)
            if not self.in_flight or not wait():
                return
            if not done:
                self.client.wait_progress(seen)

    def _emit(self, f: _InFlight):
        outcomes: list[Outcome] = f.future.result()
        reasons: list[str | None] = [None] * len(f.batch)
        hosts: dict[str, Counter] = {}
        for i, outcome in zip(f.todo, outcomes):
            sample = f.batch[i]
            try:
                reasons[i] = outcome.apply(sample)
            except Exception as e:  # bad data never crashes a run: this sample's drop
                reasons[i] = f"{Download.name}:{error_detail(e)}"
            counts = hosts.setdefault(host_of(sample.url), Counter())
            counts.update(urls=1, ok=int(outcome.ok), attempts=outcome.attempts,
                          bytes=outcome.download_bytes, cached=int(outcome.from_cache))
            if not outcome.ok:
                counts[reasons[i]] += 1
        self._count(outcomes)
        windows = (f.window,)
        for out in split_batch(f.batch, reasons, self.counters):
            if isinstance(out, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(out.tag, WindowedValue(out.value, f.timestamp, windows))
            else:
                yield WindowedValue(out, f.timestamp, windows)
        for host, counts in hosts.items():
            yield beam.pvalue.TaggedOutput(HOSTS, WindowedValue((host, dict(counts)), f.timestamp, windows))

    def _count(self, outcomes: list[Outcome]) -> None:
        self.progress.add(len(outcomes), sum(o.ok for o in outcomes))
        self.counters.inc("download_urls", len(outcomes))
        self.counters.inc("download_ok", sum(o.ok for o in outcomes))
        self.counters.inc("download_from_cache", sum(o.from_cache for o in outcomes))
        self.counters.inc("download_requests", sum(o.attempts for o in outcomes if not o.from_cache))
        self.counters.inc("download_bytes", sum(o.download_bytes for o in outcomes if not o.from_cache))


class _SumCounts(beam.CombineFn):
    def create_accumulator(self):
        return Counter()

    def add_input(self, acc, counts):
        acc.update(counts)
        return acc

    def merge_accumulators(self, accs):
        total = Counter()
        for acc in accs:
            total.update(acc)
        return total

    def extract_output(self, acc):
        return dict(acc)


def _host_row(host: str, counts: dict) -> dict:
    reasons = {k: v for k, v in counts.items() if ":" in k}
    row = {"host": host, **{k: v for k, v in counts.items() if ":" not in k}}
    row["by_reason"] = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return row


def summarize(totals: dict, top: list) -> dict:
    urls = totals.get("urls", 0)
    facts = _host_row("*", totals)
    del facts["host"]
    facts["success_rate"] = round(totals.get("ok", 0) / urls, 4) if urls else None
    facts["top_hosts"] = [_host_row(h, c) for h, c in top]
    return facts


class _HostFacts(beam.PTransform):
    """(host, counts) per batch -> one dict: totals, by reason, hosts, the busiest hosts."""

    def expand(self, per_batch):
        per_host = per_batch | "PerHost" >> beam.CombinePerKey(_SumCounts())
        top = per_host | "TopHosts" >> beam.combiners.Top.Of(TOP_HOSTS, key=lambda kv: (kv[1]["urls"], kv[0]))
        totals = (per_host | "CountHost" >> beam.Map(lambda kv: {**kv[1], "hosts": 1})
                  | "Totals" >> beam.CombineGlobally(_SumCounts()))
        return totals | "Summarize" >> beam.Map(summarize, beam.pvalue.AsSingleton(top))


class Download(Stage):
    """Fetch every URL-only sample (limits, retries, opt-outs, optional resize)."""

    step = "Download"
    name = "download"
    provides = (FETCHER,)
    options = (DownloadOptions, BlockListOptions)
    fields = FIELDS

    def __init__(self, cfg: DownloadSettings, output: str | None, blocks: BlockSettings | None = None,
                 blocks_output: str | None = None):
        super().__init__()
        self.cfg = cfg
        self.output = output
        self.blocks = blocks  # built before the run into blocks_output (cfg.blocklists names the manifest)
        self.blocks_output = blocks_output
        if cfg.blocklists:
            self.fields.update(BLOCK_FIELDS)

    @classmethod
    def _configured(cls, run, output: str | None) -> "Download":
        config, blocks = run.derive(download_settings), run.derive(block_settings)
        if not blocks.lists:
            return cls(config, output)
        config = dataclasses.replace(config, blocklists=manifest_path(run.output))
        return cls(config, output, blocks=blocks, blocks_output=run.output)

    @classmethod
    def from_run(cls, run) -> "Download | None":
        """On when the run's samples arrive as URLs it fetches; a bad download flag raises UsageError."""
        run.derive(download_settings)  # checked even when nothing is fetched
        if not run.fetches_urls:
            return None
        _require_client()
        return cls._configured(run, run.output)

    @classmethod
    def provide(cls, capability: str, run) -> "Download":
        """FETCHER: a download step for URLs other than the input's (an eval set's), without the cache."""
        _require_client()
        return cls._configured(run, None)

    def prepare(self) -> None:
        if self.blocks is not None:
            build_indexes(self.blocks, self.blocks_output)

    def expand(self, batches):
        if self.cfg.cache and self.output:
            remove_partial_files(self.output)  # a killed run's half-written cache files
        # Spread URL-only batches over the workers (one input file is read by one worker);
        # batches holding images skip the shuffle.
        parts = batches | "HasImages" >> beam.Partition(
            lambda b, _: int(any(s.image is not None for s in b.samples)), 2)
        spread = parts[0] | "Spread" >> beam.Reshuffle()
        batches = (spread, parts[1]) | "Join" >> beam.Flatten()
        out = batches | "Fetch" >> beam.ParDo(DownloadBatches(self.cfg, self.output)).with_output_types(
            SampleBatch).with_outputs(DROPPED, HOSTS, main="kept")
        return StageOutput(out.kept, [out[DROPPED]], out[HOSTS] | "HostFacts" >> _HostFacts())
