"""The caption stage alone in a Beam graph: captions equal open_clip's generate, bad images are ledger rows."""
import io

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from PIL import Image

from curate.caption.handler import CocaHandler
from curate.caption.settings import CaptionSettings
from curate.caption.stage import Caption, _FailedCalls
from curate.models.coca import CocaModel, GenerationParams, decode_tokens, sample_seed, write_tiny_coca
from curate.models.resolve import resolve
from curate.runners.placement import place_accelerator
from curate.sample import Sample, SampleBatch, make_uid
from curate.score.inference import InferenceSettings
from tests.test_caption_model import direct_captions
from tests.test_models import sample_images
from tests.test_score_stage import _read, _write

PARAMS = GenerationParams("top_p", seq_len=10, min_seq_len=2, top_p=0.8)
SEED = 11


@pytest.fixture(scope="module")
def coca(tmp_path_factory):
    config, checkpoint = write_tiny_coca(str(tmp_path_factory.mktemp("coca")), name="tiny-coca-stage", seed=5)
    return checkpoint, resolve("caption", config, checkpoint)


def _settings(spec, **kw) -> CaptionSettings:
    run = InferenceSettings(device="cpu", batch_size=2, rows_per_batch=3, decode_threads=2, torch_threads=1)
    return CaptionSettings(spec, PARAMS, run, captions_per_image=2, seed=SEED, **kw)


def _black_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 40)).save(out, format="PNG")
    return out.getvalue()


def test_in_graph_captions_equal_open_clip_generate_and_bad_images_are_ledger_rows(coca, tmp_path):
    checkpoint, spec = coca
    images = sample_images(3)
    good = [Sample(make_uid(f"img{i}", "alt"), caption=f"alt text {i}", image=b) for i, b in enumerate(images)]
    bad = Sample(make_uid("trunc", "cut"), caption="a truncated jpeg", image=images[0][:1500])
    junk = Sample(make_uid("junk", "x"), caption="not an image", image=b"GIF89a garbage")
    url_only = Sample(make_uid("url", "y"), caption="only a url", url="http://example.com/y.jpg")
    mixed = [good[0], bad, good[1], url_only, junk, good[2]]
    batches = [SampleBatch(f"00000-{i:06d}", mixed[i:i + 3]) for i in range(0, len(mixed), 3)]
    kept_path, dropped_path = str(tmp_path / "kept.pkl"), str(tmp_path / "dropped.pkl")
    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions([])) as p:
        out = p | beam.Create(batches, reshuffle=False) | Caption(_settings(spec, mix=0.5))
        _ = out.kept | "Kept" >> beam.Map(lambda b: [(s.uid, dict(s.values)) for s in b.samples]) | (
            "SaveKept" >> beam.Map(_write, kept_path))
        _ = (out.dropped | beam.Flatten() | beam.Map(lambda kv: kv[1].to_pylist())
             | "SaveDropped" >> beam.Map(_write, dropped_path))
    kept = {uid: values for rows in _read(kept_path) for uid, values in rows}
    dropped = {row["uid"]: row["reason"] for rows in _read(dropped_path) for row in rows}
    assert dropped == {bad.uid: "caption:decode_error", junk.uid: "caption:decode_error"}
    assert set(kept) == {s.uid for s in good} | {url_only.uid}
    assert kept[url_only.uid] == {}  # no image: passes uncaptioned
    seeds = [[sample_seed(s.uid, SEED, k) for k in range(2)] for s in good]
    tokenizer = CocaModel(spec, "cpu").tokenizer
    reference = [[decode_tokens(tokenizer, ids) for ids in per] for per in
                 direct_captions(checkpoint, images, PARAMS, seeds)]
    assert [kept[s.uid]["syn_captions"] for s in good] == reference
    for s in good:
        values = kept[s.uid]
        assert values["syn_caption"] == values["syn_captions"][0]
        assert values["caption_model"] == spec.describe() and isinstance(values["txt_is_synthetic"], bool)


class _FailsOnBlack(CocaModel):
    """A real CoCa whose generate fails whenever an all-black image is in the call."""

    def generate(self, pixels, params, seeds=None):
        if (np.asarray(pixels).reshape(len(pixels), -1).max(axis=1) == 0).any():
            raise RuntimeError("boom")
        return super().generate(pixels, params, seeds)


def test_a_failed_generation_fails_only_its_image(coca):
    _, spec = coca
    images = sample_images(3)
    samples = [Sample(make_uid(f"g{i}", "a"), caption="a", image=b) for i, b in enumerate(images)]
    black = Sample(make_uid("black", "b"), caption="b", image=_black_png())
    handler = CocaHandler(_settings(spec))
    model = _FailsOnBlack(spec, "cpu")
    batch = SampleBatch("00000-000000", [samples[0], black, samples[1], samples[2]])
    [result] = handler.run_inference([batch], model)
    assert result.inference.errors == [None, "generate_error", None, None]
    alone = handler.run_inference([SampleBatch("00000-000100", [samples[1]])], model)[0]
    assert result.inference.captions[2] == alone.inference.captions[0]  # same caption in any batch


def test_a_failed_call_puts_each_of_its_samples_in_the_ledger():
    samples = [Sample(make_uid(f"s{i}", "c"), caption="c", image=b"x") for i in range(3)]
    batches = [SampleBatch("00000-000000", samples[:2]), SampleBatch("00000-000100", samples[2:])]
    fn = _FailedCalls("generate_error")
    fn.setup()
    rows = [row for _, table in fn.process((batches, (RuntimeError, None, None))) for row in table.to_pylist()]
    assert [r["reason"] for r in rows] == ["caption:generate_error"] * 3
    assert [r["uid"] for r in rows] == [s.uid for s in samples]


def test_the_gpu_hint_goes_on_the_model_step_only(coca):
    _, spec = coca
    gpu = "type:nvidia-l4;count:1;install-nvidia-driver"
    options = PipelineOptions(["--accelerator", gpu])
    p = beam.Pipeline(runner=FnApiRunner(), options=options)  # built, not run
    _ = p | beam.Create([SampleBatch("00000-0000000000", [])]) | "Caption" >> Caption(_settings(spec))
    assert place_accelerator(p, options) == ["Caption/Model_coca"]
