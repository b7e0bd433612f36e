"""MetaCLIP curation as one Stage: Match -> CountEntries (global) -> Balance.

Matching reads a batch's caption column in one call and writes the ids as one Arrow list
column. Only small values cross the graph for the global step: each batch sends its distinct
entry ids and their counts, combined into one count array that reaches Balance as a side
input; the batches wait for it parked on storage.
"""
from __future__ import annotations

from collections import Counter
from itertools import chain

import apache_beam as beam
import numpy as np
import pyarrow as pa

from curate.errors import UsageError
from curate.filters.language import LANGUAGE, LANGUAGE_SCORE
from curate.metaclip import balance, worldwide
from curate.metaclip.counts import (CountEntries, cached_probabilities, entry_id_column, entry_ids_of, shared_matcher,
                                   summarize)
from curate.metaclip.metadata import DEFAULT, cached_metadata
from curate.metaclip.names import (BALANCED_OUT, COUNTS, ENTRY_IDS, KEEP_PROBABILITY, METACLIP_T, NAME,
                                   NO_LANGUAGE_METADATA, NO_MATCH, reason)
from curate.metaclip.options import MetaclipOptions, worldwide_settings
from curate.sample import SampleBatch, take_column
from curate.stage import DROPPED, ApplyParked, Judge, Stage, StageOutput, apply_judge


class MatchEntries(Judge):
    """Records each caption's matched entry ids; drops captions that match nothing. Beside the
    kept batch: the batch's distinct ids, their counts and its captions (COUNTS)."""

    name = NAME
    fields = {ENTRY_IDS: pa.list_(pa.int32())}

    def __init__(self, metadata_path: str | None):
        self.metadata_path = metadata_path

    def setup(self):
        super().setup()
        self.matcher = shared_matcher(self.metadata_path)

    def judge_batch(self, batch):
        # the whole caption column in one call; ids laid end to end in one Arrow list column
        id_lists = self.matcher.match_many(batch.column("caption"))
        lengths = np.fromiter(map(len, id_lists), dtype=np.int32, count=len(id_lists))
        flat = np.fromiter(chain.from_iterable(id_lists), dtype=np.int32, count=int(lengths.sum()))
        batch.set_values(ENTRY_IDS, entry_id_column(lengths, flat))
        return [None if n else NO_MATCH for n in lengths.tolist()]

    def outputs(self, batch: SampleBatch, reasons):
        # the pool is every caption that reached matching; only kept captions have entries
        kept = [i for i, r in enumerate(reasons) if r is None]
        _, flat = entry_ids_of(take_column(batch.values.get(ENTRY_IDS), kept), len(kept))
        yield beam.pvalue.TaggedOutput(COUNTS, (*np.unique(flat.astype(np.int64), return_counts=True), len(batch)))


class Balance(Judge):
    """Keeps a caption when any of its entries selects it (p_e = min(1, t / count_e))."""

    name = NAME
    counts_inputs = False  # metaclip_in counts captions once, at matching
    fields = {KEEP_PROBABILITY: pa.float64()}

    def __init__(self, t: float | None, seed: int):
        self.t = t
        self.seed = seed

    def judge_batch(self, batch, counted):
        counts, pool = counted
        t = self.t if self.t is not None else balance.auto_t(pool)
        lengths, flat = entry_ids_of(batch.values.get(ENTRY_IDS), len(batch))
        kept, keep_prob = balance.select_flat(balance.uid_keys(batch.column("uid")), lengths, flat,
                                              cached_probabilities(counts, t), self.seed)
        batch.set_values(KEEP_PROBABILITY, pa.array(keep_prob, pa.float64()))
        return [None if k else BALANCED_OUT for k in kept.tolist()]


FIELDS = {**MatchEntries.fields, **Balance.fields}  # the ledger columns MetaCLIP curation adds


class MatchWorldwide(Judge):
    """MetaCLIP 2: each caption's language (lid.176) and its ids in that language's metadata;
    drops captions whose language has no metadata, and captions that match nothing. Beside the
    kept batch: its per-language counts (COUNTS)."""

    name = NAME
    fields = {LANGUAGE: pa.string(), LANGUAGE_SCORE: pa.float32(), ENTRY_IDS: pa.list_(pa.int32())}

    def __init__(self, metadata_folder: str | None, settings: worldwide.Worldwide):
        self.metadata_folder = metadata_folder
        self.settings = settings

    def setup(self):
        super().setup()
        self.matcher = worldwide.shared_matcher(self.metadata_folder, self.settings.ranges, self.settings.language_map)
        self.sizes = worldwide.language_sizes(self.metadata_folder)

    def judge(self, sample):
        code, score, language, ids = self.matcher.match(sample.caption or "")
        sample.values[LANGUAGE] = language or code
        sample.values[LANGUAGE_SCORE] = score
        if language is None:
            return NO_LANGUAGE_METADATA
        sample.values[ENTRY_IDS] = ids
        return None if ids else NO_MATCH

    def outputs(self, batch: SampleBatch, reasons):
        counts = worldwide.LanguageCounts(self.sizes)
        for sample, why in zip(batch.samples, reasons):
            if why == _NO_LANGUAGE_METADATA:  # LANGUAGE holds the detected code
                counts.add(None, sample.values[LANGUAGE], None)
            elif why is None or why == _NO_MATCH:  # LANGUAGE holds the metadata language
                counts.add(sample.values[LANGUAGE], "", sample.values[ENTRY_IDS])
        yield beam.pvalue.TaggedOutput(COUNTS, counts.sparse())


_NO_MATCH, _NO_LANGUAGE_METADATA = reason(NO_MATCH), reason(NO_LANGUAGE_METADATA)


class BalanceWorldwide(Judge):
    """MetaCLIP 2: keeps a caption when any entry selects it, p_e = min(1, t_lang / count_e)."""

    name = NAME
    counts_inputs = False  # metaclip_in counts captions once, at matching
    fields = {KEEP_PROBABILITY: pa.float64(), METACLIP_T: pa.float64()}

    def __init__(self, t: float | None, seed: int):
        self.t = t
        self.seed = seed

    def judge_batch(self, samples, counted):
        kept, keep_prob, used_t = worldwide.select([s.uid for s in samples], [s.values[LANGUAGE] for s in samples],
                                                   [s.values[ENTRY_IDS] for s in samples], counted, self.t, self.seed)
        for sample, p, t in zip(samples, keep_prob, used_t):
            sample.values[KEEP_PROBABILITY] = float(p)
            sample.values[METACLIP_T] = float(t)
        return [None if k else BALANCED_OUT for k in kept]


WORLDWIDE_FIELDS = {**MatchWorldwide.fields, **BalanceWorldwide.fields}  # the ledger columns of MetaCLIP 2


def kept_languages(batch: SampleBatch) -> dict:
    return dict(Counter(s.values[LANGUAGE] for s in batch.samples))


def check_t(t: float | None) -> None:
    if t is not None and not t > 0:
        raise UsageError(f"--t: must be > 0, got {t:g}")


class MetaclipCuration(Stage):
    """Match -> global entry counts -> balanced sampling (MetaCLIP v1, or v2 worldwide)."""

    step = "MetaCLIP"
    name = NAME
    options = (MetaclipOptions,)
    fields = FIELDS

    def __init__(self, metadata_path: str | None, t: float | None, seed: int, output: str,
                 worldwide_settings: worldwide.Worldwide | None = None):
        super().__init__()
        self.output = output
        self.metadata_path = metadata_path
        self.t = t
        self.seed = seed
        self.worldwide = worldwide_settings  # None: MetaCLIP v1 (one English list)
        self.fields = dict(FIELDS if worldwide_settings is None else WORLDWIDE_FIELDS)

    @classmethod
    def from_run(cls, run) -> "MetaclipCuration":
        mc = run.view(MetaclipOptions)
        check_t(mc.t)
        settings = worldwide_settings(run.options)  # checks --language_map
        return cls(mc.metadata, mc.t, run.seed, run.output, settings)

    def prepare(self) -> None:
        """The metadata read and checked now (a UsageError here, not a failure on a worker)."""
        if self.worldwide is not None:
            worldwide.language_sizes(self.metadata_path)  # MetaCLIP 2: a folder of per-language lists
        else:
            cached_metadata(self.metadata_path)

    def local_files(self) -> dict[str, str]:
        return {} if self.metadata_path in (None, "", DEFAULT) else {"--metadata": self.metadata_path}

    def expand(self, batches):
        if self.worldwide is not None:
            sizes = worldwide.language_sizes(self.metadata_path)
            match, count = MatchWorldwide(self.metadata_path, self.worldwide), worldwide.CountLanguages(sizes)
            judge = BalanceWorldwide(self.t, self.seed)
        else:
            size = len(cached_metadata(self.metadata_path))
            match, count, judge = MatchEntries(self.metadata_path), CountEntries(size), Balance(self.t, self.seed)
        matched = apply_judge(batches, match, tags=(COUNTS,), label="Match")
        counted = matched[COUNTS] | "CountEntries" >> beam.CombineGlobally(count)
        # batches wait for the global counts on storage (<output>/_spill/), not in the runner
        balanced = matched.kept | "Balance" >> ApplyParked(
            judge, self.output, beam.pvalue.AsSingleton(counted))
        return StageOutput(balanced.kept, [matched[DROPPED], *balanced.dropped], self.facts(counted, balanced.kept))

    def facts(self, counted, kept):
        """stats.json's MetaCLIP facts from the global counts (and, for v2, the kept batches)."""
        if self.worldwide is None:
            return counted | "Summarize" >> beam.Map(summarize, self.t, self.metadata_path)
        kept_counts = (kept | "KeptLanguages" >> beam.Map(kept_languages)
                       | "SumKept" >> beam.CombineGlobally(worldwide.SumCounts()))
        return counted | "Summarize" >> beam.Map(worldwide.summarize, beam.pvalue.AsSingleton(kept_counts),
                                                 self.t, worldwide.language_sizes(self.metadata_path))
