"""Text-only MetaCLIP curation of a URL list, column-wise: MetaCLIP's first step over billions
of captions, with the same decisions and ledger as the sample-by-sample graph.

    read + match -> [global entry counts] -> balance + dedup keys -> [URL duplicates, grouped by key]
    -> ledger part + curated URL part

A block of 100k rows (one ledger part) travels as one Arrow record batch: no Sample objects,
no per-row pickling. Where a block must wait for a global value it waits on disk (spill.py)
and only its file name is held, so memory stays flat in the pool size: what grows is the entry
counts (URL duplicates are grouped by key, dedup/near_graph.py: no step holds all keys).
"""
from __future__ import annotations

from collections import Counter
from itertools import chain

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.transforms.window import GlobalWindows

from curate.dedup import keys as K
from curate.dedup.decisions import first_drops
from curate.dedup.near_graph import FindNearDuplicates
from curate.dedup.options import DedupConfig
from curate.dedup.signatures import DISTANCE, KEEPER, as_score
from curate.io import spill
from curate.io.duplicate_rows import DUPLICATE_ROW, DuplicateRows
from curate.io.curated_urls import write_url_part
from curate.io.ledger import write_ledger_part
from curate.io.source import Progress
from curate.io.url_list import UrlListSource
from curate.io.url_list_columns import plan_blocks, read_task
from curate.metaclip import balance, text_worldwide, worldwide
from curate.metaclip.metadata import cached_metadata
from curate.metaclip.counts import CountEntries, cached_probabilities, shared_matcher, summarize
from curate.metaclip.names import BALANCED_OUT, COUNTS, ENTRY_IDS, JUDGED, KEEP_PROBABILITY, NO_MATCH, reason
from curate.sample import ledger_part_of
from curate.stage import ReasonCounters

URL_PARTS = "url_parts"
_NO_MATCH, _BALANCED_OUT = reason(NO_MATCH), reason(BALANCED_OUT)
KEPT_LANGUAGES = "kept_languages"  # MetaCLIP 2: {language: captions kept by balancing} per block


def applies(flow) -> bool:
    """Whether this graph covers the whole run: captions of a URL list, nothing downloaded, and
    every configured stage declares that it runs column-wise (an image or a model needs samples)."""
    return (isinstance(flow.source, UrlListSource) and not flow.downloads
            and all(stage.columnwise for stage in flow.stages))


def _dedup_stage(flow):
    """The configured Dedup stage (its `cfg`: URL/sha/pHash grouping), None without dedup."""
    return next((s for s in flow.stages if isinstance(getattr(s, "cfg", None), DedupConfig)), None)


def _reasons(rows: pa.RecordBatch) -> list:
    return rows.column("reason").to_pylist()


def _with(rows: pa.RecordBatch, reasons: list, **columns: pa.Array) -> pa.RecordBatch:
    """The rows with their reasons (and status) updated and columns added or replaced."""
    arrays = dict(zip(rows.schema.names, rows.columns))
    arrays["reason"] = pa.array(reasons, pa.string())
    arrays["status"] = pa.array(["kept" if r is None else "dropped" for r in reasons], pa.string())
    arrays.update(columns)
    return pa.RecordBatch.from_arrays(list(arrays.values()), names=list(arrays))


def _count(counters: ReasonCounters, reasons: list, rows=None) -> None:
    """`dropped_<reason>` for the drops among `rows` (all rows when None), as split_batch counts."""
    picked = reasons if rows is None else (reasons[i] for i in rows)
    for why, n in Counter(picked).items():
        if why is not None:
            counters.dropped(why, n)


def _plan(indexed_path, source: UrlListSource, batch_size: int):
    return plan_blocks(source, *indexed_path, batch_size)


class _ReadAndMatch(beam.DoFn):
    """A read task -> its blocks, each matched and parked; entry counts to COUNTS once per bundle."""

    def __init__(self, source: UrlListSource, batch_size: int, metadata_path: str | None, output: str,
                 worldwide_settings=None):
        self.source = source
        self.batch_size = batch_size
        self.metadata_path = metadata_path
        self.output = output
        self.worldwide = worldwide_settings  # MetaCLIP 2 (text_worldwide.py), or None for v1

    def setup(self):
        if self.worldwide is not None:
            self.matcher = worldwide.shared_matcher(self.metadata_path, self.worldwide.ranges,
                                                    self.worldwide.language_map)
            self.sizes = worldwide.language_sizes(self.metadata_path)
        else:
            self.matcher = shared_matcher(self.metadata_path)
        self.counters = ReasonCounters()
        self.progress = Progress()

    def start_bundle(self):
        # entry counts summed here and sent once per bundle: the runner would otherwise hold
        # every block's id array until the global count is combined
        if self.worldwide is not None:
            self.counts = worldwide.LanguageCounts(self.sizes)
            return
        self.counts = np.zeros(self.matcher.size, dtype=np.int64)
        self.pool = 0

    def finish_bundle(self):
        if self.worldwide is not None:
            yield beam.pvalue.TaggedOutput(COUNTS, GlobalWindows.windowed_value(self.counts.sparse()))
            return
        ids = np.flatnonzero(self.counts)
        yield beam.pvalue.TaggedOutput(COUNTS, GlobalWindows.windowed_value((ids, self.counts[ids], self.pool)))

    def process(self, task):
        for block_id, rows in read_task(self.source, task, self.batch_size):
            self.counters.inc("inputs", rows.num_rows)
            self.progress.add(rows.num_rows)
            reasons = _reasons(rows)
            live = [i for i, r in enumerate(reasons) if r is None]
            if self.worldwide is not None:
                columns = text_worldwide.match_block(self.matcher, self.counts, rows, reasons, live)
                self.counters.inc(JUDGED, len(live))
                _count(self.counters, reasons)  # read's drops and matching's, as Read and Match count them
                matched = _with(rows, reasons, **columns)
                yield block_id, spill.park(spill.spill_path(self.output, "matched", block_id), matched)
                continue
            captions = rows.column("caption").to_pylist()
            id_lists = self.matcher.match_many([captions[i] for i in live])
            lengths = np.zeros(rows.num_rows, dtype=np.int32)
            lengths[live] = [len(ids) for ids in id_lists]
            flat = np.fromiter(chain.from_iterable(id_lists), dtype=np.int32, count=int(lengths.sum()))
            for i, ids in zip(live, id_lists):
                if not ids:
                    reasons[i] = _NO_MATCH
            unmatched = np.ones(rows.num_rows, dtype=bool)
            unmatched[live] = False  # rows dropped on input never reached the matcher: no ids at all
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
            entry_ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.int32()),
                                                 mask=pa.array(unmatched))
            self.counters.inc(JUDGED, len(live))
            _count(self.counters, reasons)
            self.counts += np.bincount(flat, minlength=self.matcher.size)
            self.pool += len(live)
            matched = _with(rows, reasons, **{ENTRY_IDS: entry_ids})
            yield block_id, spill.park(spill.spill_path(self.output, "matched", block_id), matched)


class _BalanceAndKey(beam.DoFn):
    """A parked block + the global counts -> balanced, parked again; dedup keys of its kept rows."""

    def __init__(self, t: float | None, seed: int, dedup, output: str, worldwide_settings=None):
        self.t = t
        self.seed = seed
        self.dedup = dedup  # DedupConfig, or None without dedup
        self.output = output
        self.worldwide = worldwide_settings

    def setup(self):
        self.counters = ReasonCounters()

    def process(self, parked, counted):
        block_id, path = parked
        rows = spill.fetch(path)
        reasons = _reasons(rows)
        live = [i for i, r in enumerate(reasons) if r is None]
        if self.worldwide is not None:
            columns, kept_languages = text_worldwide.balance_block(rows, reasons, live, counted, self.t, self.seed)
            yield beam.pvalue.TaggedOutput(KEPT_LANGUAGES, kept_languages)
            yield from self._finish(block_id, rows, reasons, live, columns)
            return
        counts, pool = counted
        t = self.t if self.t is not None else balance.auto_t(pool)
        id_lists = rows.column(ENTRY_IDS)
        lengths = np.asarray(id_lists.value_lengths().fill_null(0))[live]
        flat = np.asarray(id_lists.take(pa.array(live, pa.int64())).flatten(), dtype=np.int64)
        uids = rows.column("uid").to_pylist()
        kept, keep_prob = balance.select_flat(balance.uid_keys([uids[i] for i in live]), lengths, flat,
                                              cached_probabilities(counts, t), self.seed)
        probability = np.full(rows.num_rows, np.nan)
        probability[live] = keep_prob
        for i, k in zip(live, kept):
            if not k:
                reasons[i] = _BALANCED_OUT
        yield from self._finish(block_id, rows, reasons, live, {KEEP_PROBABILITY: pa.array(
            probability, pa.float64(), mask=np.isnan(probability))}, uids)

    def _finish(self, block_id: str, rows: pa.RecordBatch, reasons: list, live: list, columns: dict,
                uids: list | None = None):
        """Counts, the balanced block parked again, and its dedup keys."""
        uids = rows.column("uid").to_pylist() if uids is None else uids
        _count(self.counters, reasons, live)  # metaclip_in was counted at matching
        balanced = _with(rows, reasons, **columns)
        # keys always: a row listed twice is input:duplicate_row even with --dedup none
        yield beam.pvalue.TaggedOutput("keys", self._keys(block_id, balanced, reasons, uids))
        yield block_id, spill.park(spill.spill_path(self.output, "balanced", block_id), balanced)

    def _keys(self, block_id: str, rows: pa.RecordBatch, reasons: list, uids: list) -> np.ndarray:
        """Signatures' keys (dedup/signatures.py) for rows without images: uid, score, URL digest."""
        kept = [i for i, r in enumerate(reasons) if r is None]
        keys = np.zeros(len(kept), dtype=K.KEY_DTYPE)
        keys["batch"] = K.batch_key(block_id)
        keys["pos"] = kept
        keys["uid"] = [uids[i].encode() for i in kept]
        if self.dedup is None:
            return keys
        names = set(rows.schema.names)
        score_columns = [rows.column(f).to_pylist() for f in self.dedup.score_fields if f in names]
        keys["score"] = [as_score(next((c[i] for c in score_columns if c[i] is not None), None)) for i in kept]
        if self.dedup.url:
            urls = rows.column("url").to_pylist()
            keys["url"] = [K.url_digest(urls[i]) for i in kept]
        return keys


class _WriteBlock(beam.DoFn):
    """A parked block + its dedup decisions -> its ledger part and curated URL part."""

    def __init__(self, output: str, schema: pa.Schema, url_columns: tuple[str, str]):
        self.output = output
        self.schema = schema
        self.url_columns = url_columns

    def setup(self):
        self.counters = ReasonCounters()

    def process(self, parked, decisions, duplicates):
        block_id, path = parked
        rows = spill.fetch(path)
        reasons = _reasons(rows)
        keeper: list = [None] * rows.num_rows
        distance: list = [None] * rows.num_rows
        for pos, keeper_uid, how_far in first_drops(decisions[block_id], reasons):
            keeper[pos], distance[pos] = keeper_uid, how_far
            self.counters.dropped(reasons[pos])
        for pos in duplicates[block_id]:  # after dedup, as in the sample graph's writer
            if reasons[pos] is None:
                reasons[pos] = DUPLICATE_ROW
                self.counters.dropped(DUPLICATE_ROW)
        extra = {}
        if any(k is not None for k in keeper):
            extra = {KEEPER: pa.array(keeper, pa.string()), DISTANCE: pa.array(distance, pa.float32())}
        rows = _with(rows, reasons, **extra)
        part = ledger_part_of(block_id)
        yield write_ledger_part(part, [rows], self.output, self.schema)
        kept = rows.filter(pa.array([r is None for r in reasons]))
        if kept.num_rows:
            yield beam.pvalue.TaggedOutput(URL_PARTS, write_url_part(part, [kept], self.output, self.schema,
                                                                    self.url_columns))


def curate_text(flow, curation) -> None:
    """Builds the graph of the run's stages on the flow (curation: the MetaclipCuration stage);
    the flow's writer gets ledger and URL parts already written."""
    p, output = flow.p, flow.output
    metadata_path, t, seed, settings = curation.metadata_path, curation.t, curation.seed, curation.worldwide
    dedup = _dedup_stage(flow)  # None with --dedup none; else URL/sha/pHash grouping
    cfg = dedup.cfg if dedup is not None else None
    # the ledger schema and column order of the sample graph: the stages' fields in recipe order
    for stage in flow.stages:
        flow.fields.update(stage.fields)
    schema = flow.schema()
    if settings is not None:
        sizes = worldwide.language_sizes(metadata_path)
        count = worldwide.CountLanguages(sizes)
    else:
        count = CountEntries(len(cached_metadata(metadata_path)))

    tasks = (p | "ListFiles" >> beam.Create(list(enumerate(flow.source.files)))
             | "PlanBlocks" >> beam.FlatMap(_plan, flow.source, flow.curate.batch_size)
             | "Spread" >> beam.Reshuffle())
    matched = tasks | "ReadAndMatch" >> beam.ParDo(
        _ReadAndMatch(flow.source, flow.curate.batch_size, metadata_path, output, settings)).with_outputs(
        COUNTS, main="parked")
    counted = matched[COUNTS] | "CountEntries" >> beam.CombineGlobally(count)
    balanced = matched.parked | "BalanceAndKey" >> beam.ParDo(
        _BalanceAndKey(t, seed, cfg, output, settings), beam.pvalue.AsSingleton(counted)).with_outputs(
        "keys", KEPT_LANGUAGES, main="parked")
    if settings is not None:
        kept = balanced[KEPT_LANGUAGES] | "SumKept" >> beam.CombineGlobally(worldwide.SumCounts())
        flow.facts[curation.label] = counted | "Summarize" >> beam.Map(
            worldwide.summarize, beam.pvalue.AsSingleton(kept), t, sizes)
    else:
        flow.facts[curation.label] = counted | "Summarize" >> beam.Map(summarize, t, metadata_path)
    if cfg is not None:
        drops, near_facts = balanced["keys"] | "Dedup" >> FindNearDuplicates(cfg)
        flow.facts[dedup.label] = (near_facts | "DedupFacts" >> beam.combiners.ToList()
                                   | "DedupFactsDict" >> beam.Map(_merged_facts))
    else:
        drops = p | "NoDecisions" >> beam.Create([])
    # the same uid is the same url: URL dedup already keeps one copy (the best); without it, the
    # first copy in input order stays, as the sample graph's writer decides
    duplicates = (balanced["keys"] | "DuplicateRows" >> DuplicateRows() if cfg is None or not cfg.url
                  else p | "NoDuplicateRows" >> beam.Create([]))
    written = balanced.parked | "Write" >> beam.ParDo(
        _WriteBlock(output, schema, flow.source.url_caption_columns()),
        beam.pvalue.AsMultiMap(drops), beam.pvalue.AsMultiMap(duplicates)).with_outputs(URL_PARTS, main="ledger")
    flow.written["ledger"].append(written.ledger)
    flow.written["urls"].append(written[URL_PARTS])


def _merged_facts(named) -> dict:
    """FindNearDuplicates' (name, facts) pairs -> the Dedup facts (as the Dedup stage merges them)."""
    return dict(sorted(named))
