"""Dedup flags, and their check into one DedupSettings before the pipeline starts."""
from __future__ import annotations

from dataclasses import dataclass

from apache_beam.options.pipeline_options import PipelineOptions

from curate.dedup.keep import KEEP_RULES
from curate.dedup.semdedup import SEMDEDUP_KEEP
from curate.errors import UsageError
from curate.flags import flag_defaults, one_of
from curate.options import CurateOptions

METHODS = ("url", "sha256", "phash", "semantic")
ALIASES = {"exact": ("url", "sha256"), "none": ()}
DEFAULT_RADIUS = 4  # from the precision/recall table in benchmarks/README.md
MAX_RADIUS = 16  # unrelated photos start at ~18 bits (same table); searches past this crawl
AUTO = "auto"
# what "auto" picks, the first a sample has (the scoring stage's names: curate/score)
AUTO_SCORES = ("dfn_score", "clip_score")
AUTO_EMBEDDINGS = ("clip_embedding", "dfn_embedding")


class DedupOptions(PipelineOptions):
    """Deduplication and eval-set decontamination."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--dedup", default="exact,phash",
                            help="comma list of: url, sha256 (together: exact), phash, semantic; "
                                 "or none")
        parser.add_argument("--dedup_keep", default="best_score", help=f"which duplicate stays: "
                            f"{' | '.join(KEEP_RULES)} (best_score: highest --dedup_score_field, "
                            "then smallest uid; rows without a score come last)")
        parser.add_argument("--dedup_score_field", default=AUTO,
                            help="ledger column best_score ranks by; auto: the first of "
                                 f"{', '.join(AUTO_SCORES)} a sample has")
        parser.add_argument("--phash_radius", type=int, default=DEFAULT_RADIUS,
                            help="max Hamming distance (bits of 64) between near-duplicate pHashes")
        parser.add_argument("--semdedup_eps", type=float, default=0.05,
                            help="SemDeDup: drop a row whose cosine to a kept row of its cluster "
                                 "exceeds 1 - eps (the paper's 0.124 removed ~50%% of LAION-440M)")
        parser.add_argument("--semdedup_clusters", type=int, default=0,
                            help="SemDeDup k-means clusters; 0 = one per 10,000 rows; at most one per 39 rows "
                                 "of the training sample (--semdedup_sample)")
        parser.add_argument("--semdedup_sample", type=int, default=100_000,
                            help="rows the k-means centroids are trained on (a deterministic sample)")
        parser.add_argument("--semdedup_keep", default="nearest_centroid",
                            help=f"which near-identical row stays: {' | '.join(SEMDEDUP_KEEP)}")
        parser.add_argument("--semdedup_embedding", default=AUTO,
                            help="image embedding (Sample.vectors name) SemDeDup uses; auto: the "
                                 f"first of {', '.join(AUTO_EMBEDDINGS)} (the scoring stage's) a sample has")
        parser.add_argument("--eval_images", default=None,
                            help="evaluation images to decontaminate against: folder, .tar shards "
                                 "or URL list (as --input); matches become dedup:eval_contamination")
        parser.add_argument("--eval_radius", type=int, default=None,
                            help="pHash radius of an eval match (default: --phash_radius)")
        parser.add_argument("--eval_cosine", type=float, default=None,
                            help="also drop a training image whose embedding has at least this "
                                 "cosine to an eval image's (the scoring model embeds both: needs "
                                 "--clip_model or --dfn_model); default: pHash only")


def parse_methods(value: str) -> set[str]:
    chosen: set[str] = set()
    for name in (m.strip() for m in value.split(",") if m.strip()):
        if name in ALIASES:
            chosen.update(ALIASES[name])
        elif name in METHODS:
            chosen.add(name)
        else:
            raise UsageError(f"--dedup: unknown method {name!r} (use {', '.join(METHODS)}, exact or none)")
    return chosen


def _settings(o) -> dict:
    """Flag values (a DedupOptions view or parsed defaults) -> DedupSettings's fields, checked."""
    methods = parse_methods(o.dedup)
    one_of("--dedup_keep", o.dedup_keep, KEEP_RULES)
    one_of("--semdedup_keep", o.semdedup_keep, SEMDEDUP_KEEP)
    for flag in ("phash_radius", "eval_radius"):
        value = getattr(o, flag)
        if value is not None and not 0 <= value <= MAX_RADIUS:
            raise UsageError(f"--{flag}: must be between 0 and {MAX_RADIUS} bits, got {value}")
    if not 0 < o.semdedup_eps < 1:
        raise UsageError(f"--semdedup_eps: must be in (0, 1), got {o.semdedup_eps:g}")
    if o.eval_cosine is not None and (o.eval_images is None or not -1 < o.eval_cosine <= 1):
        raise UsageError("--eval_cosine: needs --eval_images and a cosine in (-1, 1]")
    if o.semdedup_clusters < 0 or o.semdedup_sample < 1:
        raise UsageError("--semdedup_clusters must be >= 0 and --semdedup_sample >= 1")
    return dict(
        url="url" in methods, sha="sha256" in methods,
        phash_radius=o.phash_radius if "phash" in methods else None,
        semantic="semantic" in methods, keep=o.dedup_keep, score_field=o.dedup_score_field,
        semdedup_eps=o.semdedup_eps, semdedup_clusters=o.semdedup_clusters,
        semdedup_sample=o.semdedup_sample, semdedup_keep=o.semdedup_keep,
        embedding=o.semdedup_embedding, eval_images=o.eval_images,
        eval_radius=o.phash_radius if o.eval_radius is None else o.eval_radius,
        eval_cosine=o.eval_cosine,
    )


def _flag_defaults() -> dict:
    """What the flags give when none is passed: DedupSettings's defaults, so they are written once."""
    given = flag_defaults(DedupOptions, CurateOptions)
    return {**_settings(given), "seed": given.seed}


_DEFAULTS = _flag_defaults()


@dataclass(frozen=True)
class DedupSettings:
    """The checked dedup settings; a field left out is the flag's default (tests name a few)."""

    url: bool = _DEFAULTS["url"]
    sha: bool = _DEFAULTS["sha"]
    phash_radius: int | None = _DEFAULTS["phash_radius"]  # None: no pHash grouping
    semantic: bool = _DEFAULTS["semantic"]
    keep: str = _DEFAULTS["keep"]
    score_field: str = _DEFAULTS["score_field"]
    semdedup_eps: float = _DEFAULTS["semdedup_eps"]
    semdedup_clusters: int = _DEFAULTS["semdedup_clusters"]
    semdedup_sample: int = _DEFAULTS["semdedup_sample"]
    semdedup_keep: str = _DEFAULTS["semdedup_keep"]
    embedding: str = _DEFAULTS["embedding"]
    eval_images: str | None = _DEFAULTS["eval_images"]
    eval_radius: int = _DEFAULTS["eval_radius"]
    eval_cosine: float | None = _DEFAULTS["eval_cosine"]
    seed: int = _DEFAULTS["seed"]

    @property
    def score_fields(self) -> tuple[str, ...]:
        return AUTO_SCORES if self.score_field == AUTO else (self.score_field,)

    @property
    def embeddings(self) -> tuple[str, ...]:
        return AUTO_EMBEDDINGS if self.embedding == AUTO else (self.embedding,)

    @property
    def grouping(self) -> bool:
        return self.url or self.sha or self.phash_radius is not None

    @property
    def hashes_images(self) -> bool:
        return self.phash_radius is not None or self.eval_images is not None

    @property
    def needs_embeddings(self) -> bool:
        return self.semantic or self.eval_cosine is not None

    @property
    def active(self) -> bool:
        return self.grouping or self.semantic or self.eval_images is not None


def dedup_settings(options: PipelineOptions, seed: int) -> DedupSettings:
    """The checked dedup settings; UsageError (exit 2) on a bad flag."""
    return DedupSettings(**_settings(options.view_as(DedupOptions)), seed=seed)
