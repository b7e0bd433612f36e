"""Scoring flags -> checked, resolved settings (before the pipeline starts, one-line errors)."""
from __future__ import annotations

from dataclasses import dataclass, field

from apache_beam.options.pipeline_options import StandardOptions

from curate.errors import UsageError
from curate.models.resolve import ModelSpec, embed_dim, fetch_weights, resolve
from curate.options import CurateOptions
from curate.score.run_settings import RunSettings
from curate.score.image_filter import ImageFilterSettings, load_targets
from curate.score.options import ROLES, ScoreOptions

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
REMOTE_RUNNERS = ("DataflowRunner", "SparkRunner", "FlinkRunner")


@dataclass(frozen=True)
class Cut:
    minimum: float | None = None  # --<role>_min
    keep_fraction: float | None = None  # --<role>_keep_fraction

    @property
    def active(self) -> bool:
        return self.minimum is not None or self.keep_fraction is not None


@dataclass(frozen=True)
class ScoreSettings:
    models: dict[str, ModelSpec]  # role -> spec, in scoring order
    cuts: dict[str, Cut]
    run: RunSettings
    save_embeddings: bool = False
    image_filter: ImageFilterSettings | None = None
    notes: tuple[str, ...] = field(default=())


def _check_numbers(o: ScoreOptions) -> None:
    for role in ROLES:
        fraction = getattr(o, f"{role}_keep_fraction")
        if fraction is not None and not 0 < fraction <= 1:
            raise UsageError(f"--{role}_keep_fraction: must be in (0, 1], got {fraction:g}")
        minimum = getattr(o, f"{role}_min")
        if minimum is not None and not -1 <= minimum <= 1:
            raise UsageError(f"--{role}_min: a cosine score is in [-1, 1], got {minimum:g}")
        if getattr(o, f"{role}_model") is None:
            for flag in ("pretrained", "min", "keep_fraction"):
                if getattr(o, f"{role}_{flag}") is not None:
                    raise UsageError(f"--{role}_{flag}: needs --{role}_model")
    if o.score_precision not in PRECISIONS:
        raise UsageError(f"--score_precision: {o.score_precision!r} is not one of {', '.join(PRECISIONS)}")
    if o.score_decode not in ("cpu", "gpu"):
        raise UsageError(f"--score_decode: {o.score_decode!r} is not cpu or gpu")
    for flag in ("score_batch_size", "image_filter_clusters", "image_filter_train_size"):
        if getattr(o, flag) < 1:
            raise UsageError(f"--{flag}: must be >= 1")
    for flag in ("score_decode_threads", "torch_threads", "model_copies"):
        if getattr(o, flag) < 0:
            raise UsageError(f"--{flag}: must be >= 0")


def score_settings(options) -> ScoreSettings | None:
    """The run's scoring, or None when no model is named. Raises UsageError on a bad flag."""
    o = options.view_as(ScoreOptions)
    curate = options.view_as(CurateOptions)
    _check_numbers(o)
    models = {role: resolve(role, getattr(o, f"{role}_model"), getattr(o, f"{role}_pretrained"))
              for role in ROLES if getattr(o, f"{role}_model")}
    image_filter = None
    if o.image_filter_targets:
        if "clip" not in models:
            raise UsageError("--image_filter_targets: needs --clip_model (the targets' embedding model)")
        image_filter = ImageFilterSettings(o.image_filter_targets, o.image_filter_clusters,
                                           o.image_filter_train_size, "clip", curate.seed)
    if not models:
        return None
    run = RunSettings(device=o.device, precision=o.score_precision, batch_size=o.score_batch_size,
                      rows_per_batch=curate.batch_size, decode=o.score_decode,
                      decode_threads=o.score_decode_threads, torch_threads=o.torch_threads,
                      model_copies=o.model_copies)
    cuts = {role: Cut(getattr(o, f"{role}_min"), getattr(o, f"{role}_keep_fraction")) for role in models}
    notes = tuple(spec.note for spec in models.values() if spec.note)
    return ScoreSettings(models, cuts, run, bool(o.save_embeddings), image_filter, notes)


def prepare_scoring(options, required: bool = False) -> ScoreSettings | None:
    """Validate, fix activations (printing what was fixed), fetch weights, read targets: all before the run."""
    settings = score_settings(options)
    if settings is None:
        if required:
            raise UsageError("this recipe scores images: give --clip_model or --dfn_model")
        return None
    for note in settings.notes:
        print(f"curate: note: {note}", flush=True)
    runner = options.view_as(StandardOptions).runner or ""
    if not runner.endswith(REMOTE_RUNNERS):  # remote workers fetch for themselves
        for spec in settings.models.values():
            fetch_weights(spec)
    if settings.image_filter is not None:
        targets = load_targets(settings.image_filter.targets)
        dim = embed_dim(settings.models["clip"])
        if dim is not None and targets.shape[1] != dim:
            raise UsageError(f"--image_filter_targets: embeddings of dim {targets.shape[1]}, "
                             f"but {settings.models['clip'].name} embeds to {dim}")
    return settings
