"""MetaCLIP (Xu et al., 2023): curate captions against metadata first, then fetch only what is kept.

read -> match entries -> global entry counts -> balance to t -> [download] -> image facts -> shards
(dedup before the shards: URL, sha256 and pHash near duplicates, as MetaCLIP deduplicated images)
"""
from __future__ import annotations

import apache_beam as beam

from curate.balance.stage import apply_balance, balance_from_options
from curate.caption.settings import apply_captions, prepare_captions
from curate.dedup.stage import apply_dedup, dedup_from_options
from curate.download.stage import Download
from curate.filters.image_facts import ImageFacts
from curate.metaclip.metadata import load_metadata
from curate.metaclip.options import MetaclipOptions, worldwide_settings
from curate.metaclip.worldwide import prepare_worldwide
from curate.metaclip import text_only
from curate.metaclip.stages import MetaclipCuration
from curate.options import CurateOptions
from curate.score.settings import prepare_scoring, score_settings
from curate.sample import SampleBatch
from curate.stage import ApplyStage

NAME = "metaclip"
SUMMARY = "MetaCLIP: substring-match captions to metadata, balance entries to t, write shards"
DEFAULTS: dict = {}


def prepare(options, source) -> None:
    if worldwide_settings(options) is not None:  # MetaCLIP 2: a folder of per-language lists
        prepare_worldwide(options.view_as(MetaclipOptions))
    else:
        load_metadata(options.view_as(MetaclipOptions).metadata)  # fails now, not on a worker
    dedup_from_options(options)
    prepare_scoring(options)  # optional: on with --clip_model / --dfn_model
    balance_from_options(options)  # --balance semantic needs the scoring model
    prepare_captions(options)  # optional: on with --caption_model (after every cut)


def build(flow):
    mc = flow.options.view_as(MetaclipOptions)
    seed = flow.options.view_as(CurateOptions).seed
    if text_only.applies(flow):  # captions only: the column-wise graph, same decisions and ledger
        text_only.curate_text(flow, mc.metadata, mc.t, seed, worldwide_settings(flow.options))
        return flow.p | "NoSampleBatches" >> beam.Create([]).with_output_types(SampleBatch)
    batches = flow.read()
    batches = flow.apply("MetaCLIP", MetaclipCuration(mc.metadata, mc.t, seed, flow.output,
                                                        worldwide_settings(flow.options)), batches)
    if flow.downloads and flow.source.needs_download:
        batches = flow.apply("Download", Download.from_flow(flow), batches)
    batches = flow.apply("ImageFacts", ApplyStage(ImageFacts()), batches)
    scoring = score_settings(flow.options)
    if scoring is not None:
        from curate.score.stages import Score  # imports torch: only runs that score pay for it

        batches = flow.apply("Score", Score(scoring, flow.output), batches)
    batches = apply_dedup(flow, batches)
    return apply_captions(flow, apply_balance(flow, batches))
