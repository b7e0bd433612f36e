"""Caption flags -> checked, resolved settings (before the pipeline starts, one-line errors).

Torch-free: recipes import it cheaply; the stage (RunInference, torch) is imported only by runs
that caption.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from apache_beam.options.pipeline_options import StandardOptions

from curate.caption.options import CaptionOptions
from curate.errors import UsageError
from curate.models.coca import GENERATION_TYPES, GenerationParams, is_coca_config, require_transformers
from curate.models.resolve import HF_HUB, LOCAL_DIR, ModelSpec, fetch_weights, resolve
from curate.options import CurateOptions
from curate.score.options import ScoreOptions
from curate.score.run_settings import RunSettings
from curate.score.settings import PRECISIONS, REMOTE_RUNNERS

ROLE = "caption"  # the flag prefix (--caption_model) and the metric namespace
SYN_ROLE = "syn_clip"  # the CLIP model scoring synthetic captions: its column is syn_clip_score


@dataclass(frozen=True)
class CaptionSettings:
    spec: ModelSpec
    params: GenerationParams
    run: RunSettings
    captions_per_image: int = 1
    mix: float = 0.0  # share of samples whose <uid>.txt is the synthetic caption
    seed: int = 0
    syn_score: ModelSpec | None = None  # --clip_model under the syn_clip role, with --syn_clip_score


def _params(o: CaptionOptions) -> GenerationParams:
    if o.caption_generation not in GENERATION_TYPES:
        raise UsageError(f"--caption_generation: {o.caption_generation!r} is not one of {', '.join(GENERATION_TYPES)}")
    if not o.caption_max_length > o.caption_min_length >= 0 or o.caption_max_length < 2:
        raise UsageError(f"--caption_max_length: must be >= 2 and above --caption_min_length "
                         f"({o.caption_max_length} vs {o.caption_min_length})")
    if not 0 < o.caption_top_p <= 1:
        raise UsageError(f"--caption_top_p: must be in (0, 1], got {o.caption_top_p:g}")
    if not o.caption_temperature > 0:
        raise UsageError(f"--caption_temperature: must be > 0, got {o.caption_temperature:g}")
    if not o.caption_repetition_penalty > 0:
        raise UsageError(f"--caption_repetition_penalty: must be > 0, got {o.caption_repetition_penalty:g}")
    for flag in ("caption_top_k", "caption_num_beams", "caption_num_beam_groups", "caption_batch_size",
                 "captions_per_image"):
        if getattr(o, flag) < 1:
            raise UsageError(f"--{flag}: must be >= 1")
    if o.caption_num_beams % o.caption_num_beam_groups:
        raise UsageError(f"--caption_num_beam_groups: {o.caption_num_beam_groups} does not divide "
                         f"--caption_num_beams {o.caption_num_beams}")
    if o.captions_per_image > 1 and o.caption_generation == "beam_search":
        raise UsageError("--captions_per_image: beam search gives one caption per image; "
                         "use --caption_generation top_p or top_k for several")
    if o.caption_precision not in PRECISIONS:
        raise UsageError(f"--caption_precision: {o.caption_precision!r} is not one of {', '.join(PRECISIONS)}")
    return GenerationParams(o.caption_generation, o.caption_max_length, o.caption_min_length, o.caption_top_p,
                            o.caption_top_k, o.caption_temperature, o.caption_num_beams,
                            o.caption_num_beam_groups, o.caption_repetition_penalty)


def _check_coca(spec: ModelSpec) -> None:
    """A CLIP config has no text decoder: refuse it now when its config is known without a download."""
    if getattr(spec, "kind", "open_clip") != "open_clip":  # a transformers CLIPModel: no decoder
        raise UsageError(f"--caption_model: {spec.name} is not an open_clip CoCa model")
    config = spec.config
    if config is None and not spec.name.startswith((HF_HUB, LOCAL_DIR)):
        import open_clip

        config = open_clip.get_model_config(spec.name)
    if is_coca_config(config) is False:
        raise UsageError(f"--caption_model: {spec.name} is not a CoCa model (no text decoder); "
                         f"e.g. coca_ViT-L-14 + mscoco_finetuned_laion2B-s13B-b90k")


def caption_settings(options) -> CaptionSettings | None:
    """The run's captioning, or None without --caption_model. Raises UsageError on a bad flag."""
    o = options.view_as(CaptionOptions)
    if not o.caption_model:
        for flag in ("caption_pretrained", "caption_seed"):
            if getattr(o, flag) is not None:
                raise UsageError(f"--{flag}: needs --caption_model")
        if o.syn_clip_score or o.caption_mix:
            raise UsageError(f"--{'syn_clip_score' if o.syn_clip_score else 'caption_mix'}: needs --caption_model")
        return None
    params = _params(o)
    if not 0 <= o.caption_mix <= 1:
        raise UsageError(f"--caption_mix: a share in [0, 1], got {o.caption_mix:g}")
    score = options.view_as(ScoreOptions)
    spec = resolve(ROLE, o.caption_model, o.caption_pretrained)
    _check_coca(spec)
    syn_score = None
    if o.syn_clip_score:
        if not score.clip_model:
            raise UsageError("--syn_clip_score: needs --clip_model (the model that scores the synthetic captions)")
        syn_score = dataclasses.replace(resolve("clip", score.clip_model, score.clip_pretrained), role=SYN_ROLE,
                                        note=None)
    curate = options.view_as(CurateOptions)
    run = RunSettings(device=score.device, precision=o.caption_precision, batch_size=o.caption_batch_size,
                      rows_per_batch=curate.batch_size, decode="cpu", decode_threads=score.score_decode_threads,
                      torch_threads=score.torch_threads, model_copies=score.model_copies)
    seed = curate.seed if o.caption_seed is None else o.caption_seed
    return CaptionSettings(spec, params, run, o.captions_per_image, o.caption_mix, seed, syn_score)


def prepare_captions(options, required: bool = False) -> CaptionSettings | None:
    """Validate, check transformers, fetch the weights: all before the run."""
    settings = caption_settings(options)
    if settings is None:
        if required:
            raise UsageError("this recipe captions images: give --caption_model")
        return None
    require_transformers()
    if settings.spec.note:
        print(f"curate: note: {settings.spec.note}", flush=True)
    runner = options.view_as(StandardOptions).runner or ""
    if not runner.endswith(REMOTE_RUNNERS):  # remote workers fetch for themselves
        fetch_weights(settings.spec)
    return settings


def apply_captions(flow, batches):
    """The caption stage where a recipe places it (after its cuts and dedup), when --caption_model is given."""
    settings = caption_settings(flow.options)
    if settings is None:
        return batches
    from curate.caption.stage import Caption  # imports torch: only runs that caption pay for it

    return flow.apply("Caption", Caption(settings), batches)
