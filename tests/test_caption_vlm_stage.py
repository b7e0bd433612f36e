"""The caption stage with a transformers captioner in a Beam graph: captions equal transformers'
generate on each image alone, images the processor refuses and empty generations are ledger rows."""
import io
import shutil

import apache_beam as beam
import pytest
import torch
import transformers
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from PIL import Image

from curate.caption.settings import CaptionSettings
from curate.caption.stage import Caption
from curate.models.generation import GenerationParams, sample_seed
from curate.models.resolve import resolve
from curate.models.spec import CAPTION
from curate.models.tiny_vlm import write_tiny_vlm
from curate.runners.placement import place_accelerator
from curate.sample import Sample, SampleBatch, make_uid
from curate.score.inference import InferenceSettings
from tests.test_caption_vlm import direct_captions
from tests.test_models import sample_images
from tests.test_score_stage import _read, _write

PARAMS = GenerationParams("top_p", seq_len=6, min_seq_len=1, top_p=0.8)
SEED = 11


@pytest.fixture(scope="module")
def blip(tmp_path_factory):
    return write_tiny_vlm(str(tmp_path_factory.mktemp("blip") / "model"), "blip", seed=4)


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    return write_tiny_vlm(str(tmp_path_factory.mktemp("qwen") / "model"), "qwen2_vl", seed=5)


def _settings(spec, params=PARAMS, per_image=2, **kw) -> CaptionSettings:
    run = InferenceSettings(device="cpu", batch_size=2, rows_per_batch=3, decode_threads=2, torch_threads=1)
    return CaptionSettings(spec, params, run, captions_per_image=per_image, seed=SEED, **kw)


def _png(size) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "red").save(out, format="PNG")
    return out.getvalue()


def _run(settings, samples, tmp_path):
    batches = [SampleBatch(f"00000-{i:06d}", samples[i:i + 3]) for i in range(0, len(samples), 3)]
    kept_path, dropped_path = str(tmp_path / "kept.pkl"), str(tmp_path / "dropped.pkl")
    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions([])) as p:
        out = p | beam.Create(batches, reshuffle=False) | Caption(settings)
        _ = out.kept | "Kept" >> beam.Map(lambda b: [(s.uid, dict(s.values)) for s in b.samples]) | (
            "SaveKept" >> beam.Map(_write, kept_path))
        _ = (out.dropped | beam.Flatten() | beam.Map(lambda kv: kv[1].to_pylist())
             | "SaveDropped" >> beam.Map(_write, dropped_path))
    kept = {uid: values for rows in _read(kept_path) for uid, values in rows} if (tmp_path / "kept.pkl").exists() else {}
    dropped = {row["uid"]: row["reason"] for rows in _read(dropped_path) for row in rows}
    return kept, dropped


def test_in_graph_captions_equal_generate_and_bad_images_are_ledger_rows(qwen, tmp_path):
    from curate.models.vlm import VlmInputs

    spec = resolve("caption", qwen, None, task=CAPTION)
    images = sample_images(3)
    good = [Sample(make_uid(f"img{i}", "alt"), caption=f"alt text {i}", image=b) for i, b in enumerate(images)]
    junk = Sample(make_uid("junk", "x"), caption="not an image", image=b"GIF89a garbage")
    # real images the processor refuses: Qwen2-VL's takes no aspect ratio over 200; a 1 px high one
    # would be read channels-first, so it is refused before (whatever its batch)
    refused = Sample(make_uid("strip", "y"), caption="a thin strip", image=_png((1000, 4)))
    flat = Sample(make_uid("flat", "w"), caption="a flat line", image=_png((3, 1)))
    url_only = Sample(make_uid("url", "z"), caption="only a url", url="http://example.com/z.jpg")
    samples = [good[0], refused, good[1], url_only, junk, flat, good[2]]
    kept, dropped = _run(_settings(spec, mix=0.5), samples, tmp_path)
    assert dropped == {s.uid: "caption:decode_error" for s in (refused, junk, flat)}
    assert set(kept) == {s.uid for s in good} | {url_only.uid} and kept[url_only.uid] == {}
    seeds = [[sample_seed(s.uid, SEED, k) for k in range(2)] for s in good]
    prompt = VlmInputs(spec, spec.config).text
    assert [kept[s.uid]["syn_captions"] for s in good] == direct_captions(qwen, images, prompt, PARAMS, seeds)
    for s in good:
        values = kept[s.uid]
        assert values["syn_caption"] == values["syn_captions"][0] and values["caption_model"] == qwen
        assert isinstance(values["txt_is_synthetic"], bool)


def test_an_empty_generation_is_a_caption_empty_drop(blip, tmp_path):
    """A BLIP whose decoder always ends at once: nothing is left of its captions."""
    folder = str(tmp_path / "mute-blip")
    shutil.copytree(blip, folder)
    model = transformers.BlipForConditionalGeneration.from_pretrained(folder)
    with torch.no_grad():
        model.text_decoder.cls.predictions.bias[model.config.text_config.sep_token_id] = 1e4
    model.save_pretrained(folder)
    spec = resolve("caption", folder, None, task=CAPTION)
    samples = [Sample(make_uid(f"m{i}", "a"), caption="a", image=b) for i, b in enumerate(sample_images(2))]
    greedy = GenerationParams("greedy", seq_len=4, min_seq_len=0, num_beam_groups=1)
    kept, dropped = _run(_settings(spec, greedy, per_image=1), samples, tmp_path)
    assert kept == {} and dropped == {s.uid: "caption:empty" for s in samples}


def test_the_gpu_hint_goes_on_the_vlm_step_only(blip):
    spec = resolve("caption", blip, None, task=CAPTION)
    gpu = "type:nvidia-l4;count:1;install-nvidia-driver"
    options = PipelineOptions(["--accelerator", gpu])
    p = beam.Pipeline(runner=FnApiRunner(), options=options)  # built, not run
    _ = p | beam.Create([SampleBatch("00000-0000000000", [])]) | "Caption" >> Caption(_settings(spec))
    assert place_accelerator(p, options) == ["Caption/Model_vlm"]
