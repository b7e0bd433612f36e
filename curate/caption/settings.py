"""Caption flags -> checked, resolved settings (before the pipeline starts, one-line errors).

Torch-free, as the stage module that imports it: recipes import both on every run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from curate.caption.names import NAME, SYN_ROLE
from curate.caption.options import CaptionOptions
from curate.errors import UsageError
from curate.flags import one_of
from curate.models.coca import GENERATION_TYPES as COCA_GENERATION_TYPES
from curate.models.coca import is_coca_config
from curate.models.generation import GENERATION_TYPES, SAMPLING, GenerationParams
from curate.models.hf_resolve import is_transformers_model
from curate.models.resolve import HF_HUB, LOCAL_DIR, ModelSpec, resolve
from curate.models.spec import CAPTION, TRANSFORMERS
from curate.options import CurateOptions
from curate.score.options import ScoreOptions
from curate.score.inference import InferenceSettings
from curate.score.settings import PRECISIONS

ROLE = NAME  # the caption model's role (its flag prefix, --caption_model)
COCA_TAG = "mscoco_finetuned_laion2B-s13B-b90k"  # a CoCa's captioning weights: open_clip's COCO-finetuned tag
ENGINES = ("transformers", "vllm")

# what the flags left unset mean, per kind of captioner: open_clip's generate defaults for CoCa;
# for transformers models greedy decoding (a chat model's usual) and lengths in new tokens
MODEL_DEFAULTS = {
    "open_clip": {"caption_generation": "beam_search", "caption_max_length": 30, "caption_min_length": 5,
                  "caption_num_beam_groups": 3},
    TRANSFORMERS: {"caption_generation": "greedy", "caption_max_length": 64, "caption_min_length": 0,
                   "caption_num_beam_groups": 1},
}


@dataclass(frozen=True)
class CaptionSettings:
    spec: ModelSpec
    params: GenerationParams
    inference: InferenceSettings
    captions_per_image: int = 1
    mix: float = 0.0  # share of samples whose <uid>.txt is the synthetic caption
    seed: int = 0
    syn_score: ModelSpec | None = None  # --clip_model under the syn_clip role, with --syn_clip_score
    prompt: str | None = None  # --caption_prompt (transformers models; None: the family's default)
    engine: str = "transformers"  # --caption_engine (transformers models)

    @property
    def transformers(self) -> bool:
        """A transformers checkpoint (not an open_clip CoCa)."""
        return self.spec.kind == TRANSFORMERS


def _flag(o: CaptionOptions, kind: str, name: str):
    value = getattr(o, name)
    return MODEL_DEFAULTS[kind][name] if value is None else value


def _params(o: CaptionOptions, kind: str) -> GenerationParams:
    generation, max_length, min_length, groups = (_flag(o, kind, f) for f in (
        "caption_generation", "caption_max_length", "caption_min_length", "caption_num_beam_groups"))
    types = GENERATION_TYPES if kind == TRANSFORMERS else COCA_GENERATION_TYPES
    if generation not in types:
        extra = " (greedy: transformers models only)" if generation == "greedy" else ""
        raise UsageError(f"--caption_generation: {generation!r} is not one of {', '.join(types)}{extra}")
    if kind == TRANSFORMERS:
        if not max_length >= max(1, min_length) or min_length < 0:
            raise UsageError(f"--caption_max_length: new tokens, >= 1 and >= --caption_min_length "
                             f"({max_length} vs {min_length})")
        if groups != 1:
            raise UsageError("--caption_num_beam_groups: diverse beam groups are CoCa's; transformers models take 1")
    elif not max_length > min_length >= 0 or max_length < 2:
        raise UsageError(f"--caption_max_length: must be >= 2 and above --caption_min_length "
                         f"({max_length} vs {min_length})")
    if not 0 < o.caption_top_p <= 1:
        raise UsageError(f"--caption_top_p: must be in (0, 1], got {o.caption_top_p:g}")
    if not o.caption_temperature > 0:
        raise UsageError(f"--caption_temperature: must be > 0, got {o.caption_temperature:g}")
    if not o.caption_repetition_penalty > 0:
        raise UsageError(f"--caption_repetition_penalty: must be > 0, got {o.caption_repetition_penalty:g}")
    for flag, value in (("caption_top_k", o.caption_top_k), ("caption_num_beams", o.caption_num_beams),
                        ("caption_num_beam_groups", groups), ("caption_batch_size", o.caption_batch_size),
                        ("captions_per_image", o.captions_per_image)):
        if value < 1:
            raise UsageError(f"--{flag}: must be >= 1")
    if o.caption_num_beams % groups:
        raise UsageError(f"--caption_num_beam_groups: {groups} does not divide --caption_num_beams {o.caption_num_beams}")
    if o.captions_per_image > 1 and generation not in SAMPLING:
        raise UsageError(f"--captions_per_image: {generation.replace('_', ' ')} gives one caption per image; "
                         f"use --caption_generation top_p or top_k for several")
    one_of("--caption_precision", o.caption_precision, PRECISIONS)
    return GenerationParams(generation, max_length, min_length, o.caption_top_p, o.caption_top_k,
                            o.caption_temperature, o.caption_num_beams, groups, o.caption_repetition_penalty)


def _check_engine(o: CaptionOptions, kind: str, params: GenerationParams) -> None:
    one_of("--caption_engine", o.caption_engine, ENGINES)
    if kind != TRANSFORMERS:
        if o.caption_engine != "transformers":
            raise UsageError(f"--caption_engine: {o.caption_engine} serves transformers checkpoints, not open_clip's "
                             f"CoCa {o.caption_model}")
        if o.caption_prompt is not None:
            raise UsageError(f"--caption_prompt: open_clip's CoCa {o.caption_model} takes no prompt")
    elif o.caption_engine == "vllm" and params.generation_type == "beam_search":
        raise UsageError("--caption_engine vllm: no beam search there (vLLM's generate samples or decodes greedily); "
                         "use --caption_generation greedy, top_p or top_k")


def _pretrained(o: CaptionOptions) -> str | None:
    """--caption_pretrained, or for an open_clip CoCa name given without it, its COCO-finetuned
    weights where open_clip has them (what a captioner should use: the others are contrastive
    pretraining checkpoints)."""
    if o.caption_pretrained is not None or is_transformers_model(o.caption_model):
        return o.caption_pretrained
    try:
        import open_clip
    except ImportError:
        return None  # resolve() says which extra to install
    tags = {t.lower().replace("-", "_") for t in open_clip.list_pretrained_tags_by_model(o.caption_model)}
    return COCA_TAG if COCA_TAG.lower().replace("-", "_") in tags else None


def _check_coca(spec: ModelSpec) -> None:
    """A CLIP config has no text decoder: refuse it now when its config is known without a download."""
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
    if not 0 <= o.caption_mix <= 1:
        raise UsageError(f"--caption_mix: a share in [0, 1], got {o.caption_mix:g}")
    score = options.view_as(ScoreOptions)
    spec = resolve(ROLE, o.caption_model, _pretrained(o), task=CAPTION)
    params = _params(o, spec.kind)
    _check_engine(o, spec.kind, params)
    if spec.kind != TRANSFORMERS:
        _check_coca(spec)
    syn_score = None
    if o.syn_clip_score:
        if clip is None:
            raise UsageError("--syn_clip_score: needs --clip_model (the model that scores the synthetic captions)")
        syn_score = dataclasses.replace(clip, role=SYN_ROLE, note=None)
    curate = options.view_as(CurateOptions)
    inference = InferenceSettings(device=score.device, precision=o.caption_precision, batch_size=o.caption_batch_size,
                                  rows_per_batch=curate.batch_size, decode="cpu",
                                  decode_threads=score.score_decode_threads,
                                  torch_threads=score.torch_threads, model_copies=score.model_copies)
    seed = curate.seed if o.caption_seed is None else o.caption_seed
    return CaptionSettings(spec, params, inference, o.captions_per_image, o.caption_mix, seed, syn_score,
                           o.caption_prompt, o.caption_engine)
