"""transformers CLIPModel checkpoints (TinyCLIP's format): resolution, direct scores, in the graph."""
import io
import json
import pickle
import sys

import apache_beam as beam
import numpy as np
import pytest
import torch
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from PIL import Image

from curate.errors import UsageError
from curate.models.hf_clip import write_tiny_hf_clip
from curate.models.resolve import TRANSFORMERS, embed_dim, fetch_weights, resolve
from curate.sample import Sample, SampleBatch, make_uid
from curate.score.handler import InferenceSettings
from curate.score.stage import ScoreWith
from tests.test_models import SCORE_TOLERANCE, sample_images


@pytest.fixture(scope="module")
def hf_tiny(tmp_path_factory):
    return write_tiny_hf_clip(str(tmp_path_factory.mktemp("hf-tiny") / "model"), seed=3)


def direct_hf_scores(folder: str, images: list[bytes], captions: list[str]) -> np.ndarray:
    """transformers by hand: CLIPProcessor, then CLIPModel's projected features, cosine."""
    from transformers import CLIPModel, CLIPProcessor

    processor = CLIPProcessor.from_pretrained(folder)
    model = CLIPModel.from_pretrained(folder).eval()
    length = model.config.text_config.max_position_embeddings
    x = processor(text=captions, images=[Image.open(io.BytesIO(b)) for b in images], return_tensors="pt",
                  padding="max_length", truncation=True, max_length=length)
    with torch.no_grad():
        image = torch.nn.functional.normalize(model.get_image_features(pixel_values=x["pixel_values"]), dim=-1)
        text = torch.nn.functional.normalize(model.get_text_features(
            input_ids=x["input_ids"], attention_mask=x["attention_mask"]), dim=-1)
    return (image * text).sum(-1).numpy()


def test_bad_transformers_models_fail_in_one_line(hf_tiny, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    cases = [(str(empty), None, "--clip_model: "), (str(other), None, "is a transformers bert model config"),
             (hf_tiny, "v1", "--clip_pretrained: not used with the local folder")]
    for model, pretrained, message in cases:
        with pytest.raises(UsageError, match=message) as e:
            resolve("clip", model, pretrained)
        assert "\n" not in str(e.value)
    monkeypatch.setitem(sys.modules, "transformers", None)  # as where the hf extra is not installed
    with pytest.raises(UsageError, match=r"pip install 'curate\[hf\]'"):
        resolve("prefilter", hf_tiny, None)


def test_an_unreachable_hub_id_fails_before_the_run(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    spec = resolve("prefilter", "nobody-here/no-such-clip", None)  # an org/repo id: transformers
    assert spec.kind == TRANSFORMERS
    with pytest.raises(UsageError, match="--prefilter_model: cannot fetch nobody-here/no-such-clip") as e:
        fetch_weights(spec)
    assert "\n" not in str(e.value)


def _write(item, path):
    with open(path, "ab") as f:
        pickle.dump(item, f)


def _read(path):
    out = []
    with open(path, "rb") as f:
        while True:
            try:
                out.append(pickle.load(f))
            except EOFError:
                return out


def test_in_graph_scores_equal_clipmodel_and_bad_images_are_ledger_rows(hf_tiny, tmp_path):
    spec = resolve("clip", hf_tiny, None)  # a folder with config.json: a transformers CLIPModel
    assert spec.kind == TRANSFORMERS and spec.note is None and embed_dim(spec) == 32
    images = sample_images(5)
    captions = ["a dog on a couch", "Two people, riding bikes!", "long " * 100, "a cat", "x"]  # one truncated
    good = [Sample(make_uid(f"img{i}", c), caption=c, image=b) for i, (b, c) in enumerate(zip(images, captions))]
    bad = Sample(make_uid("junk", "junk"), caption="not an image", image=b"GIF89a garbage")
    mixed = [good[0], bad, *good[1:]]
    batches = [SampleBatch(f"00000-{i:06d}", mixed[i:i + 2]) for i in range(0, len(mixed), 2)]
    kept_path, dropped_path = str(tmp_path / "kept.pkl"), str(tmp_path / "dropped.pkl")
    run = InferenceSettings(device="cpu", batch_size=2, rows_per_batch=2, decode_threads=2, torch_threads=1)
    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions([])) as p:
        out = p | beam.Create(batches, reshuffle=False) | ScoreWith(spec, run)
        _ = out.kept | "Kept" >> beam.Map(lambda b: [(s.uid, s.values["clip_score"]) for s in b.samples]) | (
            "SaveKept" >> beam.Map(_write, kept_path))
        _ = (out.dropped | beam.Flatten() | beam.Map(lambda kv: kv[1].to_pylist())
             | "SaveDropped" >> beam.Map(_write, dropped_path))
        _ = out.facts | "SaveUsage" >> beam.Map(_write, str(tmp_path / "usage.pkl"))
    kept = dict(pair for rows in _read(kept_path) for pair in rows)
    assert [row["reason"] for rows in _read(dropped_path) for row in rows] == ["score:decode_error"]
    reference = direct_hf_scores(hf_tiny, images, [s.caption for s in good])
    np.testing.assert_allclose([kept[s.uid] for s in good], reference, atol=SCORE_TOLERANCE, rtol=0)
    assert _read(str(tmp_path / "usage.pkl"))[0]["samples"] == len(good)  # the undecodable never reached it
