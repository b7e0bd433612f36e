"""The caption stage: CoCa captions through RunInference, then [their CLIP score], as one StageOutput.

Every captioned sample gets `syn_caption` (the first), `syn_captions` (all), `caption_model` and
`txt_is_synthetic` (whether `<uid>.txt` holds the synthetic caption: --caption_mix) in the
ledger, the sidecar and `<uid>.json`; the shard writer adds `<uid>.syn.txt`. The alt-text stays
in `caption`. An undecodable image is `caption:decode_error`, a failed generation
`caption:generate_error`. With --syn_clip_score the run's CLIP model scores the synthetic caption
against the image (`syn_clip_score`; left empty where it cannot be scored, nothing is dropped).
The model steps are labelled `Caption/Model_*`: --accelerator puts the GPUs there.
"""
from __future__ import annotations

import dataclasses
import math

import apache_beam as beam
import pyarrow as pa
from apache_beam.ml.inference.base import RunInference

from curate.coders import typed_results
from curate.caption.handler import GENERATE_ERROR, NO_IMAGE, CocaHandler
from curate.caption.mix import txt_is_synthetic
from curate.caption.settings import SYN_ROLE, CaptionSettings
from curate.io.ledger_batch import samples_to_batch
from curate.sample import SampleBatch
from curate.stage import DROPPED, ReasonCounters, StageOutput, split_batch

NAME = "caption"
SYN_CAPTION, SYN_CAPTIONS, MODEL, TXT_IS_SYNTHETIC = "syn_caption", "syn_captions", "caption_model", "txt_is_synthetic"
SYN_SCORE = f"{SYN_ROLE}_score"
_ALT = "_alt_caption"  # where the alt-text waits while the CLIP model reads the synthetic caption


class _ApplyCaptions(beam.DoFn):
    """PredictionResult(batch, BatchCaptions) -> the batch with captions; failures dropped."""

    def __init__(self, settings: CaptionSettings):
        self.model = settings.spec.describe()
        self.seed = settings.seed
        self.mix = settings.mix

    def setup(self):
        self.counters = ReasonCounters()

    def process(self, result):
        batch, out = result.example, result.inference
        reasons = []
        for sample, captions, error in zip(batch.samples, out.captions, out.errors):
            if error == NO_IMAGE:
                self.counters.inc(f"{NAME}_{NO_IMAGE}")
                reasons.append(None)
                continue
            if error is not None:
                reasons.append(f"{NAME}:{error}")
                continue
            sample.values.update({SYN_CAPTION: captions[0], SYN_CAPTIONS: list(captions), MODEL: self.model,
                                  TXT_IS_SYNTHETIC: txt_is_synthetic(sample.uid, self.seed, self.mix)})
            reasons.append(None)
        self.counters.inc(f"{NAME}_in", len(batch.samples))
        yield from split_batch(batch, reasons, self.counters)


def _restore(batch: SampleBatch) -> SampleBatch:
    for sample in batch.samples:
        if _ALT in sample.values:
            sample.caption = sample.values.pop(_ALT)
    return batch


class _FailedCalls(beam.DoFn):
    """RunInference's dead letters (a failed call's batches) -> ledger rows, `caption:<detail>`."""

    def __init__(self, detail: str):
        self.reason = f"{NAME}:{detail}"

    def setup(self):
        self.counters = ReasonCounters()

    def process(self, dead_letter):
        batches, _ = dead_letter
        for batch in batches:
            batch = _restore(batch)
            self.counters.inc(f"dropped_{self.reason}", len(batch.samples))
            yield batch.ledger_part, samples_to_batch(batch.samples, [self.reason] * len(batch.samples))


def _synthetic_view(batch: SampleBatch) -> SampleBatch:
    """The batch with each captioned sample's caption swapped for its synthetic one (alt-text parked)."""
    samples = []
    for s in batch.samples:
        if s.values.get(SYN_CAPTION) is not None:
            s = dataclasses.replace(s, caption=s.values[SYN_CAPTION], values={**s.values, _ALT: s.caption})
        samples.append(s)
    return SampleBatch(batch.id, samples)


def _apply_syn_scores(result) -> SampleBatch:
    batch, scored = result.example, result.inference
    for j, (sample, error) in enumerate(zip(batch.samples, scored.errors)):
        if _ALT in sample.values:
            score = float(scored.scores[j])
            sample.values[SYN_SCORE] = None if error is not None or math.isnan(score) else score
    return _restore(batch)


class Caption(beam.PTransform):
    """CoCa captions (and optionally their CLIP score) on every sample with an image. A StageOutput."""

    def __init__(self, settings: CaptionSettings):
        super().__init__()
        self.settings = settings
        self.fields = {SYN_CAPTION: pa.string(), SYN_CAPTIONS: pa.list_(pa.string()), MODEL: pa.string(),
                       TXT_IS_SYNTHETIC: pa.bool_()}
        if settings.syn_score is not None:
            self.fields[SYN_SCORE] = pa.float32()

    def expand(self, batches):
        s = self.settings
        inference, dead = batches | "Model_coca" >> RunInference(CocaHandler(s)).with_exception_handling()
        typed_results(inference)
        applied = inference | "ApplyCaptions" >> beam.ParDo(_ApplyCaptions(s)).with_output_types(
            SampleBatch).with_outputs(DROPPED, main="kept")
        dropped = [applied[DROPPED], dead.failed_inferences | "FailedCalls" >> beam.ParDo(_FailedCalls(GENERATE_ERROR))]
        kept = applied.kept
        if s.syn_score is not None:
            from curate.score.handler import OpenClipHandler

            view = kept | "SyntheticView" >> beam.Map(_synthetic_view)
            scored, dead_scores = view | f"Model_{SYN_ROLE}" >> RunInference(
                OpenClipHandler(s.syn_score, s.run)).with_exception_handling()
            typed_results(scored)
            kept = scored | "ApplySynScores" >> beam.Map(_apply_syn_scores).with_output_types(SampleBatch)
            dropped.append(dead_scores.failed_inferences | "FailedScoreCalls" >> beam.ParDo(
                _FailedCalls("syn_score_error")))
        facts = {"model": s.spec.describe(), "generation": dataclasses.asdict(s.params),
                 "captions_per_image": s.captions_per_image, "mix": s.mix, "seed": s.seed,
                 "syn_clip_score": None if s.syn_score is None else s.syn_score.describe()}
        return StageOutput(kept, dropped, batches.pipeline | "CaptionFacts" >> beam.Create([facts]))
