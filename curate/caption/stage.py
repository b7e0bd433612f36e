"""The caption stage: captions through RunInference, then [their CLIP score], as one Stage.

The captioner is an open_clip CoCa or a transformers vision-language checkpoint (BLIP, LLaVA,
Qwen2-VL, ...; on transformers' generate or, with --caption_engine vllm, on vLLM): the same
outputs either way.

Every captioned sample gets `syn_caption` (the first), `syn_captions` (all), `caption_model` and
`txt_is_synthetic` (whether `<uid>.txt` holds the synthetic caption: --caption_mix) in the
ledger, the sidecar and `<uid>.json`; the shard writer adds `<uid>.syn.txt`. The alt-text stays
in `caption`. An undecodable image is `caption:decode_error`, a failed generation
`caption:generate_error`, a generation that is empty once the prompt echo, special tokens and
whitespace are gone `caption:empty` (with several captions per image the empty ones are left
out of `syn_captions`; the sample is dropped only when all are empty). With --syn_clip_score the run's CLIP model (the wired scoring stage's)
scores the synthetic caption against the image (`syn_clip_score`; left empty where it cannot be
scored, nothing is dropped). The model steps are labelled `Caption/Model_*` (Model_coca,
Model_vlm, Model_vllm, Model_syn_clip): --accelerator puts the GPUs there. Recipes import this
module on every run: torch, open_clip, transformers and Beam's RunInference are imported only when
the stage is expanded.
"""
from __future__ import annotations

import dataclasses
import math

import apache_beam as beam
import pyarrow as pa

from curate.caption.mix import txt_is_synthetic
from curate.caption.names import (EMPTY, GENERATE_ERROR, MODEL, NAME, NO_IMAGE, NO_IMAGE_METRIC, SYN_CAPTION,
                                  SYN_CAPTIONS, SYN_ROLE, SYN_SCORE, SYN_SCORE_ERROR, TXT_IS_SYNTHETIC)
from curate.caption.options import CaptionOptions
from curate.caption.settings import CaptionSettings, caption_settings
from curate.errors import UsageError
from curate.io import verdicts
from curate.models.hf_resolve import default_caption_prompt, fetch_transformers
from curate.models.resolve import fetch_weights
from curate.sample import SampleBatch
from curate.score.options import ScoreOptions
from curate.score.score_with import ResultRows, failed_call_rows
from curate.stage import DROPPED, SCORING, Judge, ReasonCounters, Stage, StageOutput, apply_judge

_ALT = "_alt_caption"  # where the alt-text waits while the CLIP model reads the synthetic caption


class _ApplyCaptions(Judge):
    """PredictionResult(batch, BatchCaptions) -> the batch with captions; failures dropped."""

    name = NAME

    def __init__(self, settings: CaptionSettings):
        self.model = settings.spec.describe()
        self.seed = settings.seed
        self.mix = settings.mix

    def batches(self, result):
        batch = result.example
        yield batch, (ResultRows(result.inference),)

    def judge(self, sample, out: ResultRows) -> str | None:
        j = out.row(sample)
        error, captions = out.result.errors[j], out.result.captions[j]
        if error == NO_IMAGE:  # not an error: the sample passes uncaptioned
            self.counters.inc(NO_IMAGE_METRIC)
            return None
        if error is not None:
            return error
        captions = [c for c in captions if c]
        if not captions:
            return EMPTY
        sample.values.update({SYN_CAPTION: captions[0], SYN_CAPTIONS: list(captions), MODEL: self.model,
                              TXT_IS_SYNTHETIC: txt_is_synthetic(sample.uid, self.seed, self.mix)})
        return None


def _restore(batch: SampleBatch) -> SampleBatch:
    """The alt-texts back in `caption` (where the CLIP model read the synthetic captions)."""
    if _ALT in batch.values:
        batch.set_column("caption", batch.value_column(_ALT))
        del batch.values[_ALT]
    return batch


class _FailedCalls(beam.DoFn):
    """RunInference's dead letters (a failed call's batches) -> ledger rows, `caption:<detail>`."""

    def __init__(self, detail: str):
        self.reason = verdicts.reason(NAME, detail)

    def setup(self):
        self.counters = ReasonCounters()

    def process(self, dead_letter):
        batches, _ = dead_letter
        yield from failed_call_rows([_restore(b) for b in batches], self.reason, self.counters)


def _synthetic_view(batch: SampleBatch) -> SampleBatch:
    """The batch with each captioned sample's caption swapped for its synthetic one (the
    alt-texts wait in a private column until `_restore`)."""
    captions, synthetic = batch.column("caption"), batch.value_column(SYN_CAPTION)
    batch.set_values(_ALT, list(captions))
    batch.set_column("caption", [c if s is None else s for c, s in zip(captions, synthetic)])
    return batch


def _apply_syn_scores(result) -> SampleBatch:
    batch, scored = result.example, result.inference
    synthetic = batch.value_column(SYN_CAPTION)
    batch.set_values(SYN_SCORE, [
        None if syn is None or error is not None or math.isnan(float(score)) else float(score)
        for syn, error, score in zip(synthetic, scored.errors, scored.scores)])
    return _restore(batch)


class Caption(Stage):
    """Synthetic captions (and optionally their CLIP score) on every sample with an image. A StageOutput."""

    step = "Caption"
    name = NAME
    options = (CaptionOptions, ScoreOptions)  # the device, decode threads and CLIP model are scoring's flags
    model_steps = ("Model_*",)  # Model_coca | Model_vlm | Model_vllm, Model_syn_clip
    needs = {SCORING: False}  # only for --syn_clip_score
    fields = {SYN_CAPTION: pa.string(), SYN_CAPTIONS: pa.list_(pa.string()), MODEL: pa.string(),
              TXT_IS_SYNTHETIC: pa.bool_()}

    def __init__(self, settings: CaptionSettings, workers_elsewhere: bool = False):
        super().__init__()
        self.settings = settings
        self.workers_elsewhere = workers_elsewhere  # their workers fetch the weights, not this machine
        # a transformers checkpoint's family (config model_type): known from a local folder's config,
        # a hub id's once prepare() has fetched it
        self.model_type = None if settings.spec.config is None else settings.spec.config.get("model_type")
        if settings.syn_score is not None:
            self.fields[SYN_SCORE] = pa.float32()

    @classmethod
    def from_run(cls, run, required: bool = False) -> "Caption | None":
        """--syn_clip_score scores the synthetic captions with the CLIP model the recipe's
        scoring stage provides (SCORING)."""
        clip = None
        if run.view(CaptionOptions).syn_clip_score:
            scoring = run.provided(SCORING)
            clip = None if scoring is None else scoring.models.get("clip")
        settings = caption_settings(run.options, clip)
        if settings is None:
            if required:
                raise UsageError("this recipe captions images: give --caption_model")
            return None
        return cls(settings, run.workers_elsewhere)

    def prepare(self) -> None:
        """transformers (CoCa's generation needs it) or vLLM, what resolving fixed, the models' weights."""
        s = self.settings
        if not s.transformers:
            from curate.models.coca import require_transformers

            require_transformers()
        elif s.engine == "vllm" and not self.workers_elsewhere:
            from curate.models.vlm_vllm import require_vllm

            require_vllm()
        if self.settings.spec.note:
            print(f"curate: note: {self.settings.spec.note}", flush=True)
        if not self.workers_elsewhere:  # remote workers fetch for themselves
            if s.transformers:
                self.model_type = fetch_transformers(s.spec).get("model_type")
            else:
                fetch_weights(s.spec)
            if self.settings.syn_score is not None:
                fetch_weights(self.settings.syn_score)

    def _prompt_facts(self) -> dict:
        """transformers models: the engine and the prompt asked (None: no prompt)."""
        s = self.settings
        if not s.transformers:
            return {}
        prompt = s.prompt
        if prompt is None:
            prompt = "the family's default" if self.model_type is None else default_caption_prompt(self.model_type)
        return {"engine": s.engine, "prompt": prompt or None}

    def expand(self, batches):
        from apache_beam.ml.inference.base import RunInference  # imports torch

        from curate.caption.handler import caption_handler
        from curate.coders import typed_results

        s = self.settings
        step, handler = caption_handler(s)
        inference, dead = batches | step >> RunInference(handler).with_exception_handling()
        typed_results(inference)
        applied = apply_judge(inference, _ApplyCaptions(s), label="ApplyCaptions")
        dropped = [applied[DROPPED], dead.failed_inferences | "FailedCalls" >> beam.ParDo(_FailedCalls(GENERATE_ERROR))]
        kept = applied.kept
        if s.syn_score is not None:
            from curate.score.handler import OpenClipHandler

            view = kept | "SyntheticView" >> beam.Map(_synthetic_view)
            scored, dead_scores = view | f"Model_{SYN_ROLE}" >> RunInference(
                OpenClipHandler(s.syn_score, s.inference)).with_exception_handling()
            typed_results(scored)
            kept = scored | "ApplySynScores" >> beam.Map(_apply_syn_scores).with_output_types(SampleBatch)
            dropped.append(dead_scores.failed_inferences | "FailedScoreCalls" >> beam.ParDo(
                _FailedCalls(SYN_SCORE_ERROR)))
        facts = {"model": s.spec.describe(), "generation": dataclasses.asdict(s.params), **self._prompt_facts(),
                 "captions_per_image": s.captions_per_image, "mix": s.mix, "seed": s.seed,
                 "syn_clip_score": None if s.syn_score is None else s.syn_score.describe()}
        return StageOutput(kept, dropped, batches.pipeline | "CaptionFacts" >> beam.Create([facts]))
