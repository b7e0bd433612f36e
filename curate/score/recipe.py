"""The shape the score-based recipes share (dfn, datacomp, laion): they differ in their filter.

read -> image facts -> <filter> -> scores of every configured model -> cuts -> shards.
"""
from __future__ import annotations

from curate.filters.filter_stage import FilterStage
from curate.filters.image_facts import ImageFacts
from curate.score.settings import prepare_scoring, score_settings
from curate.score.stages import Score
from curate.stage import ApplyStage


def prepare(options) -> None:
    prepare_scoring(options, required=True)


def build(flow, filter_label: str, filters: FilterStage):
    batches = flow.read()
    batches = flow.apply("ImageFacts", ApplyStage(ImageFacts()), batches)
    batches = flow.apply(filter_label, ApplyStage(filters), batches)
    return flow.apply("Score", Score(score_settings(flow.options), flow.output), batches)
