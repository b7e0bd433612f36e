"""Scoring flags -> checked, resolved settings (before the pipeline starts, one-line errors)."""
from __future__ import annotations

from dataclasses import dataclass, field

from curate.errors import UsageError
from curate.flags import one_of
from curate.models.resolve import ModelSpec, embed_dim, resolve
from curate.options import CurateOptions
from curate.score.image_filter import ImageFilterSettings, load_targets
from curate.score.names import MASKED, PREFILTER, masked_role
from curate.score.options import ROLES, ScoreOptions
from curate.score.inference import InferenceSettings

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Cut:
    minimum: float | None = None  # --<role>_min
    keep_fraction: float | None = None  # --<role>_keep_fraction

    @property
    def active(self) -> bool:
        return self.minimum is not None or self.keep_fraction is not None


@dataclass(frozen=True)
class Prefilter:
    """The cascade: a cheap model whose cut decides which samples the expensive models see."""

    spec: ModelSpec
    cut: Cut
    audit_fraction: float  # share of the pool (keyed hash of the uid) scored by both models
    seed: int


@dataclass(frozen=True)
class ScoreSettings:
    models: dict[str, ModelSpec]  # role -> spec, in scoring order
    cuts: dict[str, Cut]
    inference: InferenceSettings
    save_embeddings: bool = False
    image_filter: ImageFilterSettings | None = None
    notes: tuple[str, ...] = field(default=())
    prefilter: Prefilter | None = None
    text_detector: str | None = None  # T-MARS (--tmars): each model also scores the text-masked image
    score_field: str = "score"  # "masked": the cuts read the T-MARS scores

    def cut_name(self, role: str) -> str:
        """What a role's cut reads: `<name>_score`, thresholds in `<name>_threshold`."""
        return masked_role(role) if self.score_field == MASKED and role in self.models else role

    @property
    def specs(self) -> list[ModelSpec]:
        """Every model the run scores with, the cascade's prefilter included (whose weights to fetch)."""
        return [*self.models.values(), *([self.prefilter.spec] if self.prefilter else [])]

    @property
    def has_cut(self) -> bool:
        return any(c.active for c in self.cuts.values()) or self.image_filter is not None


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
    _check_prefilter(o)
    _check_text(o)
    one_of("--score_precision", o.score_precision, PRECISIONS)
    if o.score_decode not in ("cpu", "gpu"):
        raise UsageError(f"--score_decode: {o.score_decode!r} is not cpu or gpu")
    for flag in ("score_batch_size", "image_filter_clusters", "image_filter_train_size"):
        if getattr(o, flag) < 1:
            raise UsageError(f"--{flag}: must be >= 1")
    for flag in ("score_decode_threads", "torch_threads", "model_copies"):
        if getattr(o, flag) < 0:
            raise UsageError(f"--{flag}: must be >= 0")


def _check_prefilter(o: ScoreOptions) -> None:
    cut = {"keep_fraction": o.prefilter_keep_fraction, "min": o.prefilter_min}
    if o.prefilter_model is None:
        for flag, value in (("pretrained", o.prefilter_pretrained), *cut.items()):
            if value is not None:
                raise UsageError(f"--prefilter_{flag}: needs --prefilter_model")
        return
    experts = [r for r in ROLES if getattr(o, f"{r}_model")]
    if not experts:
        raise UsageError("--prefilter_model: needs --clip_model or --dfn_model (the model it saves time for)")
    if all(v is None for v in cut.values()):
        raise UsageError("--prefilter_model: needs --prefilter_keep_fraction or --prefilter_min (its cut)")
    fraction = o.prefilter_keep_fraction
    if fraction is not None and not 0 < fraction <= 1:
        raise UsageError(f"--prefilter_keep_fraction: must be in (0, 1], got {fraction:g}")
    if o.prefilter_min is not None and not -1 <= o.prefilter_min <= 1:
        raise UsageError(f"--prefilter_min: a cosine score is in [-1, 1], got {o.prefilter_min:g}")
    for role in experts:
        theirs = getattr(o, f"{role}_keep_fraction")
        if fraction is not None and theirs is not None and fraction < theirs:
            raise UsageError(f"--prefilter_keep_fraction: {fraction:g} passes fewer samples than "
                             f"--{role}_keep_fraction {theirs:g} keeps of the pool; raise it")
    if not 0 <= o.prefilter_audit_fraction <= 1:
        raise UsageError(f"--prefilter_audit_fraction: must be in [0, 1], got {o.prefilter_audit_fraction:g}")


def text_detector(o: ScoreOptions) -> str | None:
    """The run's text detector: --text_detector, or the default one when --tmars needs one."""
    from curate.models.text_boxes import check_detector

    name = o.text_detector or ("default" if o.tmars else None)
    if name is None or name == "none":
        if o.tmars:
            raise UsageError("--tmars: needs a text detector (--text_detector default)")
        return None
    return check_detector(name)


def _check_text(o: ScoreOptions) -> None:
    text_detector(o)
    if o.score_field not in ("score", MASKED):
        raise UsageError(f"--score_field: {o.score_field!r} is not score or {MASKED}")
    if o.score_field == MASKED and not o.tmars:
        raise UsageError("--score_field masked: the masked score needs --tmars")
    if o.tmars and o.score_decode == "gpu":
        raise UsageError("--tmars: text is detected and masked on CPU-decoded images; use --score_decode cpu")
    if o.tmars and not any(getattr(o, f"{role}_model") for role in ROLES):
        raise UsageError("--tmars: needs --clip_model or --dfn_model (the model that scores the masked images)")


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
    inference = inference_settings(options)
    cuts = {role: Cut(getattr(o, f"{role}_min"), getattr(o, f"{role}_keep_fraction")) for role in models}
    prefilter = None
    if o.prefilter_model:
        spec = resolve(PREFILTER, o.prefilter_model, o.prefilter_pretrained)
        prefilter = Prefilter(spec, Cut(o.prefilter_min, o.prefilter_keep_fraction), o.prefilter_audit_fraction,
                              curate.seed)
    specs = [*models.values(), *([prefilter.spec] if prefilter else [])]
    notes = tuple(spec.note for spec in specs if spec.note)  # what resolve fixed (printed by prepare)
    return ScoreSettings(models, cuts, inference, bool(o.save_embeddings), image_filter, notes, prefilter,
                         text_detector(o) if o.tmars else None, o.score_field)


def inference_settings(options) -> InferenceSettings:
    """How models run on the workers (device, precision, batching, decode threads): the scoring
    flags, shared by every model stage (checked by score_settings)."""
    o = options.view_as(ScoreOptions)
    curate = options.view_as(CurateOptions)
    return InferenceSettings(device=o.device, precision=o.score_precision, batch_size=o.score_batch_size,
                             rows_per_batch=curate.batch_size, decode=o.score_decode,
                             decode_threads=o.score_decode_threads, torch_threads=o.torch_threads,
                             model_copies=o.model_copies)


def same_model(a: ModelSpec, b: ModelSpec) -> bool:
    """Whether two resolved specs build the same network with the same weights (roles and notes
    aside): `ViT-L-14` + openai resolves to `ViT-L-14-quickgelu` + openai, as datacomp names it."""
    key = lambda s: (s.kind, s.name, s.pretrained, s.config, s.quick_gelu)  # noqa: E731
    return key(a) == key(b)


def check_targets(settings: ScoreSettings) -> None:
    """The image-based filter's targets exist and match the CLIP model's width (read before the run)."""
    if settings.image_filter is None:
        return
    targets = load_targets(settings.image_filter.targets)
    dim = embed_dim(settings.models["clip"])
    if dim is not None and targets.shape[1] != dim:
        raise UsageError(f"--image_filter_targets: embeddings of dim {targets.shape[1]}, "
                         f"but {settings.models['clip'].name} embeds to {dim}")
