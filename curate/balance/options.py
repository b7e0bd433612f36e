"""Balance flags, checked into one BalanceSettings before the pipeline starts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from apache_beam.options.pipeline_options import PipelineOptions

from curate.errors import UsageError
from curate.flags import one_of

METHODS = ("none", "semantic")
EMBEDDINGS = ("image", "text")
ROWS_PER_CLUSTER = 200  # auto cluster count: RealSyn used 1M clusters for 198M images


class BalanceOptions(PipelineOptions):
    """Semantic balance (RealSyn): cap every k-means cluster of embeddings at T samples."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--balance", default="none",
                            help="none | semantic: after dedup, keep a k-means cluster of at most "
                                 "--semantic_balance_t samples whole and exactly T of a larger one "
                                 "(the T smallest keyed hashes of (uid, seed)); needs a scoring model")
        parser.add_argument("--semantic_balance_clusters", type=int, default=0,
                            help=f"k-means clusters; 0 = one per {ROWS_PER_CLUSTER} rows (RealSyn's "
                                 "ratio), at most one per 39 rows of the training sample")
        parser.add_argument("--semantic_balance_t", type=int, default=20,
                            help="samples kept per cluster (RealSyn: 20 / 35 / 180 for 15M / 30M / "
                                 "100M of 198M with 1M clusters)")
        parser.add_argument("--semantic_balance_sample", type=int, default=100_000,
                            help="rows the k-means centroids are trained on (a deterministic sample)")
        parser.add_argument("--semantic_balance_embedding", default="image",
                            help="image | text: which embedding of the scoring model is clustered "
                                 "(the first of clip, dfn configured)")


@dataclass(frozen=True)
class BalanceSettings:
    clusters: int  # 0 = auto
    t: int
    sample: int
    vector: str  # the Sample.vectors name clustered
    seed: int


def balance_settings(options, seed: int, vector_of: Callable[[str], str | None]) -> BalanceSettings | None:
    """The checked settings (None with --balance none); UsageError (exit 2) on a bad flag.

    `vector_of(kind)`: the Sample.vectors name of the scoring stage's "image" or "text"
    embedding (None when no scoring model is configured): the scoring stage names its outputs.
    """
    o = options.view_as(BalanceOptions)
    one_of("--balance", o.balance, METHODS)
    if o.balance == "none":
        return None
    if o.semantic_balance_t < 1 or o.semantic_balance_sample < 1 or o.semantic_balance_clusters < 0:
        raise UsageError("--semantic_balance_t and --semantic_balance_sample must be >= 1, "
                         "--semantic_balance_clusters >= 0")
    if o.semantic_balance_embedding not in EMBEDDINGS:
        raise UsageError(f"--semantic_balance_embedding: {o.semantic_balance_embedding!r} is not image or text")
    vector = vector_of(o.semantic_balance_embedding)
    if vector is None:
        raise UsageError("--balance semantic: needs embeddings; give --clip_model (or --dfn_model) "
                         "and its --*_pretrained weights so the scoring stage computes them")
    return BalanceSettings(o.semantic_balance_clusters, o.semantic_balance_t, o.semantic_balance_sample, vector, seed)
