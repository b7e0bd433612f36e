"""curate.models alone (no Beam): name resolution, QuickGELU mismatches, scores vs open_clip itself."""
import glob
import io
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import open_clip
from open_clip.model import CLIP
from open_clip.transform import PreprocessCfg, image_transform_v2

from curate.errors import UsageError
from curate.models.clip import ClipInputs, ClipModel, cosine
from curate.models.resolve import embed_dim, resolve
from curate.models.tiny import TINY_CONFIG, write_tiny_model
from tests.conftest import SAMPLE

# On CPU in fp32 our path feeds the model the same uint8 pixels open_clip's own preprocessing
# does; only batch composition differs, so scores agree to float32 rounding.
SCORE_TOLERANCE = 1e-5
# GPU-style decode (torchvision's antialiased bicubic resize on tensors instead of PIL's)
GPU_DECODE_TOLERANCE = 2e-3


def sample_images(n: int) -> list[bytes]:
    paths = sorted(glob.glob(os.path.join(SAMPLE, "images", "*.jpg")))[:n]
    return [open(p, "rb").read() for p in paths]


def open_clip_pixels(config: dict, images: list[bytes]) -> torch.Tensor:
    """open_clip's own validation transform on each image."""
    preprocess = image_transform_v2(PreprocessCfg(size=config["vision_cfg"]["image_size"]), is_train=False)
    return torch.stack([preprocess(Image.open(io.BytesIO(b))) for b in images])


def direct_scores(config: dict, checkpoint: str, quick_gelu: bool, images, captions: list[str]):
    """open_clip by hand: its CLIP class, the checkpoint, its transform (or its output) and tokenizer."""
    model = CLIP(**{**config, "quick_gelu": quick_gelu})
    model.load_state_dict(torch.load(checkpoint)["state_dict"])
    model.eval()
    with torch.no_grad():
        pixels = images if isinstance(images, torch.Tensor) else open_clip_pixels(config, images)
        tokens = open_clip.tokenize(captions, context_length=config["text_cfg"]["context_length"])
        image = torch.nn.functional.normalize(model.encode_image(pixels), dim=-1)
        text = torch.nn.functional.normalize(model.encode_text(tokens), dim=-1)
    return (image * text).sum(-1).numpy(), image.numpy()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    return write_tiny_model(str(folder), name="tiny-models-test", seed=1)


def _ours(spec, images, captions):
    model = ClipModel(spec, "cpu")
    inputs = ClipInputs(spec, model.input_config())
    image, text = model.embed(np.stack([inputs.pixels(b) for b in images]), inputs.tokens(captions))
    return model, inputs, cosine(image, text), image


def test_scores_equal_open_clip_from_a_saved_checkpoint(tiny):
    config_path, checkpoint = tiny
    images = sample_images(6)
    captions = [f"a photo number {i} of something" for i in range(6)]
    spec = resolve("clip", config_path, checkpoint)
    assert spec.name == "tiny-models-test" and spec.quick_gelu is None and spec.note is None
    assert embed_dim(spec) == TINY_CONFIG["embed_dim"]
    _, _, ours, image = _ours(spec, images, captions)
    reference, ref_image = direct_scores(TINY_CONFIG, checkpoint, False, images, captions)
    np.testing.assert_allclose(ours, reference, atol=SCORE_TOLERANCE, rtol=0)
    np.testing.assert_allclose(image, ref_image, atol=SCORE_TOLERANCE, rtol=0)
    assert np.ptp(ours) > 1e-3  # the images really differ in score


def test_checkpoint_trained_with_quickgelu_is_built_with_quickgelu(tmp_path):
    config_path, checkpoint = write_tiny_model(str(tmp_path), name="tiny-quick", seed=2, quick_gelu=True)
    spec = resolve("dfn", config_path, checkpoint)  # the config file says GELU, the weights' folder QuickGELU
    assert spec.quick_gelu is True
    assert "QuickGELU" in spec.note and "--dfn_model" in spec.note
    images, captions = sample_images(4), ["two cats on a sofa", "a red bus", "a plate of food", "a tennis player"]
    _, _, ours, _ = _ours(spec, images, captions)
    right, _ = direct_scores(TINY_CONFIG, checkpoint, True, images, captions)
    wrong, _ = direct_scores(TINY_CONFIG, checkpoint, False, images, captions)
    np.testing.assert_allclose(ours, right, atol=SCORE_TOLERANCE, rtol=0)
    assert np.abs(ours - wrong).max() > 10 * SCORE_TOLERANCE  # the mismatch would have changed scores


@pytest.mark.parametrize("model, tag, expected", [
    ("ViT-L-14", "openai", "ViT-L-14-quickgelu"),  # OpenAI weights: QuickGELU
    ("ViT-L-14", "dfn2b", "ViT-L-14-quickgelu"),  # Apple's DFN CLIP: QuickGELU
    ("ViT-H-14-378", "dfn5b", "ViT-H-14-378-quickgelu"),
    ("ViT-B-32-quickgelu", "laion2b_s34b_b79k", "ViT-B-32"),  # LAION-2B weights: plain GELU
])
def test_quickgelu_mismatch_of_a_tag_is_corrected_with_a_note(model, tag, expected):
    spec = resolve("clip", model, tag)
    assert spec.name == expected and spec.pretrained == tag
    assert model in spec.note and expected in spec.note


@pytest.mark.parametrize("model, tag", [("ViT-L-14-quickgelu", "openai"), ("ViT-L-14-quickgelu", "dfn2b"),
                                        ("ViT-B-32", "laion2b_s34b_b79k")])
def test_matching_pairs_pass_unchanged(model, tag):
    spec = resolve("dfn", model, tag)
    assert (spec.name, spec.pretrained, spec.note, spec.quick_gelu) == (model, tag, None, None)


def test_hf_hub_and_local_dir_models_carry_their_own_config(tmp_path):
    assert resolve("dfn", "hf-hub:apple/DFN2B-CLIP-ViT-L-14", None).name == "hf-hub:apple/DFN2B-CLIP-ViT-L-14"
    _, checkpoint = write_tiny_model(str(tmp_path), name="tiny-dir", seed=3, quick_gelu=True)
    folder = os.path.dirname(checkpoint)
    os.rename(checkpoint, os.path.join(folder, "open_clip_pytorch_model.bin"))
    spec = resolve("clip", f"local-dir:{folder}", None)
    model = ClipModel(spec, "cpu")  # loads config (QuickGELU) and weights from the folder
    images, captions = sample_images(2), ["a dog in the snow", "a kitchen with a stove"]
    inputs = ClipInputs(spec, model.input_config())
    ours = cosine(*model.embed(np.stack([inputs.pixels(b) for b in images]), inputs.tokens(captions)))
    right, _ = direct_scores(TINY_CONFIG, os.path.join(folder, "open_clip_pytorch_model.bin"), True, images, captions)
    np.testing.assert_allclose(ours, right, atol=SCORE_TOLERANCE, rtol=0)


@pytest.mark.parametrize("model, pretrained, message", [
    ("ViT-Nope-99", "openai", "unknown open_clip model"),
    ("ViT-B-32", "no-such-tag", "tags for ViT-B-32: "),
    ("ViT-B-32", None, "--clip_pretrained: required"),
    ("hf-hub:apple/DFN2B-CLIP-ViT-L-14", "dfn2b", "not used with hf-hub:"),
    ("local-dir:/no/such/folder", None, "has no open_clip_config.json"),
])
def test_bad_names_are_one_line_usage_errors(model, pretrained, message):
    with pytest.raises(UsageError, match=message) as e:
        resolve("clip", model, pretrained)
    assert "\n" not in str(e.value)


def test_a_config_file_may_not_shadow_a_builtin(tmp_path):
    path = tmp_path / "ViT-B-32.json"
    path.write_text(json.dumps(TINY_CONFIG))
    with pytest.raises(UsageError, match="is taken by another open_clip model config"):
        resolve("clip", str(path), "whatever.pt")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"vision_cfg": {}}))
    with pytest.raises(UsageError, match="not an open_clip model config"):
        resolve("clip", str(bad), "whatever.pt")


def test_decode_on_device_is_close_to_pil_and_reports_bad_images(tiny):
    config_path, checkpoint = tiny
    spec = resolve("clip", config_path, checkpoint)
    png = io.BytesIO()
    Image.open(io.BytesIO(sample_images(1)[0])).save(png, format="PNG")  # not a JPEG: the PIL fallback
    images = sample_images(5) + [png.getvalue(), b"\xff\xd8 not a jpeg at all"]
    captions = [f"caption {i} of a photo" for i in range(len(images))]
    model, inputs, cpu_scores, _ = _ours(spec, images[:-1], captions[:-1])
    image, text, failed = model.embed_encoded(images, inputs.tokens(captions))
    assert failed == [len(images) - 1]
    np.testing.assert_allclose(cosine(image, text), cpu_scores, atol=GPU_DECODE_TOLERANCE, rtol=0)
