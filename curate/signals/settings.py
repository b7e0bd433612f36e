"""Signal flags -> a checked plan (before the pipeline starts, one-line errors; torch-free).

The LAION heads read the normalized image embedding of the CLIP model they were trained on
(`--signal_clip_model`, default: that model); when the run's scoring stage scores with the same
resolved model and weights, the heads read its embedding from `sample.vectors` instead of
embedding every image a second time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from curate.errors import UsageError
from curate.models.heads import HEADS, heads_of
from curate.models.hf_resolve import is_transformers_model
from curate.models.image_classifier import resolve_classifier
from curate.models.resolve import embed_dim, resolve
from curate.models.signal_models import HeadPlan, SignalPlan
from curate.score.embeddings import vector_name
from curate.score.options import ScoreOptions
from curate.score.inference import InferenceSettings
from curate.score.settings import ScoreSettings, inference_settings, same_model, text_detector
from curate.signals.names import AESTHETIC, NSFW, TEXT_AREA, WATERMARK, column
from curate.signals.options import SignalOptions

SIGNAL_CLIP = "signal_clip"  # the role of the heads' CLIP model: flags --signal_clip_model/_pretrained
LAION_WATERMARK = "laion"


@dataclass(frozen=True)
class SignalSettings:
    plan: SignalPlan
    inference: InferenceSettings
    reuse: str | None = None  # the sample.vectors key of the scoring stage's embedding of plan.clip

    @property
    def columns(self) -> list[str]:
        return self.plan.columns


def _weights(flag: str, path: str | None) -> str | None:
    if path and "://" not in path and not os.path.isfile(path):
        raise UsageError(f"{flag}: no such file {path}")
    return path or None


def _head(signal: str, name: str, weights: str | None) -> HeadPlan:
    flag = f"--{signal}_weights"
    return HeadPlan(HEADS[name], _weights(flag, weights), flag)


def _choices(signal: str, others: str) -> str:
    return f"{', '.join(heads_of(signal))}{others}"


def _nsfw(o: SignalOptions, plan: dict) -> None:
    if o.nsfw_model is None:
        for flag in ("nsfw_weights",):
            if getattr(o, flag):
                raise UsageError(f"--{flag}: needs --nsfw_model")
        return
    if o.nsfw_model in heads_of(NSFW):
        plan["heads"][column(NSFW)] = _head(NSFW, o.nsfw_model, o.nsfw_weights)
    elif is_transformers_model(o.nsfw_model):
        if o.nsfw_weights:
            raise UsageError("--nsfw_weights: only for the laion-* detectors (a transformers checkpoint holds its "
                             "weights)")
        plan["classifiers"][column(NSFW)] = resolve_classifier(o.nsfw_model, o.nsfw_label, "--nsfw_model",
                                                               "--nsfw_label")
    else:
        raise UsageError(f"--nsfw_model: {o.nsfw_model!r} is not one of "
                         f"{_choices(NSFW, ', a transformers image-classification hub id (org/repo) or folder')}")


def _aesthetic(o: SignalOptions, plan: dict) -> None:
    if o.aesthetic_model is None:
        if o.aesthetic_weights:
            raise UsageError("--aesthetic_weights: needs --aesthetic_model")
        return
    if o.aesthetic_model not in heads_of(AESTHETIC):
        raise UsageError(f"--aesthetic_model: {o.aesthetic_model!r} is not one of {_choices(AESTHETIC, '')}")
    plan["heads"][column(AESTHETIC)] = _head(AESTHETIC, o.aesthetic_model, o.aesthetic_weights)


def _watermark(o: SignalOptions, plan: dict) -> None:
    if o.watermark_model is None:
        if o.watermark_weights:
            raise UsageError("--watermark_weights: needs --watermark_model")
        return
    if o.watermark_model == LAION_WATERMARK:
        plan["watermark"] = column(WATERMARK)
        plan["watermark_weights"] = _weights("--watermark_weights", o.watermark_weights)
    elif is_transformers_model(o.watermark_model):
        if o.watermark_weights:
            raise UsageError("--watermark_weights: only for --watermark_model laion (a transformers checkpoint "
                             "holds its weights)")
        plan["classifiers"][column(WATERMARK)] = resolve_classifier(o.watermark_model, o.watermark_label,
                                                                    "--watermark_model", "--watermark_label")
    else:
        raise UsageError(f"--watermark_model: {o.watermark_model!r} is not laion or a transformers "
                         f"image-classification hub id (org/repo) or folder")


def _signal_clip(o: SignalOptions, heads: dict[str, HeadPlan]):
    """The CLIP model the heads read: the flags', else the one the heads were trained on."""
    if not heads:
        for flag in ("signal_clip_model", "signal_clip_pretrained"):
            if getattr(o, flag):
                raise UsageError(f"--{flag}: needs a head that reads CLIP embeddings (--nsfw_model laion-*, "
                                 f"--aesthetic_model)")
        return None
    if o.signal_clip_model:
        spec = resolve(SIGNAL_CLIP, o.signal_clip_model, o.signal_clip_pretrained)
    else:
        trained_on = {h.spec.clip for h in heads.values()}
        if len(trained_on) > 1:
            names = ", ".join(f"--{h.spec.signal}_model {h.spec.name} reads {'/'.join(h.spec.clip)}"
                              for h in heads.values())
            raise UsageError(f"--signal_clip_model: the heads read different CLIP models ({names}); pick heads of "
                             f"one model")
        model, pretrained = trained_on.pop()
        spec = resolve(SIGNAL_CLIP, model, o.signal_clip_pretrained or pretrained)
    width = embed_dim(spec)
    for h in heads.values():
        if width is not None and width != h.spec.dim:
            raise UsageError(f"--{h.spec.signal}_model {h.spec.name} reads {h.spec.dim}-d embeddings; "
                             f"--signal_clip_model {spec.name} embeds to {width}")
    return spec


def signal_settings(options, scoring: ScoreSettings | None) -> SignalSettings | None:
    """The run's signals, or None when none is asked for. `scoring`: the settings of the scoring
    stage that runs before this one in the recipe (its embeddings can be reused), or None."""
    o = options.view_as(SignalOptions)
    plan: dict = {"heads": {}, "classifiers": {}}
    _nsfw(o, plan)
    _aesthetic(o, plan)
    _watermark(o, plan)
    clip = _signal_clip(o, plan["heads"])
    detector = text_detector(options.view_as(ScoreOptions))
    if detector and not (scoring is not None and scoring.text_detector):  # else T-MARS measures it
        plan.update(text_area=TEXT_AREA, text_detector=detector)
    if not (plan["heads"] or plan["classifiers"] or plan.get("watermark") or plan.get("text_area")):
        return None
    reuse = None
    if clip is not None and scoring is not None:
        reuse = next((vector_name(role) for role, spec in scoring.models.items() if same_model(spec, clip)), None)
    return SignalSettings(SignalPlan(clip=clip, embed_here=reuse is None, **plan), inference_settings(options), reuse)
