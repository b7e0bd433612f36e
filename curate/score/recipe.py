"""The shape the score-based recipes share (dfn, datacomp, laion): they differ in their filter.

read -> <caption filter> -> [download] -> image facts -> [<image filter>] -> scores of every
configured model -> cuts -> dedup (as --dedup says; best_score keeps the best-scored duplicate)
-> shards. Text rules run first so that no image is fetched for a caption that fails them.
"""
from __future__ import annotations

from curate.dedup.stage import apply_dedup, dedup_from_options
from curate.download.stage import Download
from curate.filters.filter_stage import FilterStage
from curate.filters.image_facts import ImageFacts
from curate.score.settings import prepare_scoring, score_settings
from curate.stage import ApplyStage


def prepare(options) -> None:
    prepare_scoring(options, required=True)
    dedup_from_options(options)  # checks the dedup flags now


def build(flow, caption_label: str, caption_filter: FilterStage, image_filter: FilterStage | None = None):
    batches = flow.read()
    batches = flow.apply(caption_label, ApplyStage(caption_filter), batches)
    if flow.downloads and flow.source.needs_download:
        batches = flow.apply("Download", Download.from_flow(flow), batches)
    batches = flow.apply("ImageFacts", ApplyStage(ImageFacts()), batches)
    if image_filter is not None:
        batches = flow.apply("ImageSizeFilter", ApplyStage(image_filter), batches)
    from curate.score.stages import Score  # imports torch: only runs that score pay for it

    batches = flow.apply("Score", Score(score_settings(flow.options), flow.output), batches)
    return apply_dedup(flow, batches)
