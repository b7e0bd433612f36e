"""Caption flags -> checked, resolved settings (before the pipeline starts, one-line errors).

Torch-free, as the stage module that imports it: recipes import both on every run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from curate.caption.names import NAME, SYN_ROLE
from curate.caption.options import CaptionOptions
from curate.errors import UsageError
from curate.models.coca import GENERATION_TYPES, GenerationParams, is_coca_config
from curate.models.resolve import HF_HUB, LOCAL_DIR, ModelSpec, resolve
from curate.options import CurateOptions
from curate.score.options import ScoreOptions
from curate.score.run_settings import RunSettings
from curate.score.settings import PRECISIONS

ROLE = NAME  # the caption model's role (its flag prefix, --caption_model)


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


def caption_settings(options, clip: ModelSpec | None = None) -> CaptionSettings | None:
    """The run's captioning, or None without --caption_model. Raises UsageError on a bad flag.

    `clip` is the run's CLIP scoring model (what --syn_clip_score scores the synthetic captions with)."""
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
        if clip is None:
            raise UsageError("--syn_clip_score: needs --clip_model (the model that scores the synthetic captions)")
        syn_score = dataclasses.replace(clip, role=SYN_ROLE, note=None)
    curate = options.view_as(CurateOptions)
    run = RunSettings(device=score.device, precision=o.caption_precision, batch_size=o.caption_batch_size,
                      rows_per_batch=curate.batch_size, decode="cpu", decode_threads=score.score_decode_threads,
                      torch_threads=score.torch_threads, model_copies=score.model_copies)
    seed = curate.seed if o.caption_seed is None else o.caption_seed
    return CaptionSettings(spec, params, run, o.captions_per_image, o.caption_mix, seed, syn_score)
