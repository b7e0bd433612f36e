"""The signal models alone (no Beam): each equals its published code path on random-init weights
saved in the published layout; the text detector finds drawn text and T-MARS masks it."""
import io
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from curate.errors import UsageError
from curate.models.heads import HEADS, apply_head, build_head, load_head, write_random_head
from curate.models.image_classifier import (ClassifierInputs, ImageClassifier, resolve_classifier,
                                            write_tiny_image_classifier)
from curate.models.text_boxes import (DET_CONFIG, MODEL_FILE, TextDetector, covered, mask_text, quads_to_boxes,
                                      text_area)
from curate.models.watermark import WatermarkModel, watermark_pixels, write_random_watermark_model
from tests.test_models import sample_images

TOLERANCE = 1e-5


class _Normalization(nn.Module):  # the published PyTorch port's layer
    def __init__(self, dim):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("variance", torch.ones(dim))

    def forward(self, x):
        return (x - self.mean) / self.variance.sqrt()


class _NsfwL14(nn.Module):  # CLIP-based-NSFW-Detector's PyTorch port, as NeMo Curator loads it
    def __init__(self):
        super().__init__()
        self.norm = _Normalization([768])
        self.linear_1, self.linear_2 = nn.Linear(768, 64), nn.Linear(64, 512)
        self.linear_3, self.linear_4 = nn.Linear(512, 256), nn.Linear(256, 1)
        self.act, self.act_out = nn.ReLU(), nn.Sigmoid()

    def forward(self, x):
        x = self.act(self.linear_1(self.norm(x)))
        x = self.act(self.linear_2(x))
        x = self.act(self.linear_3(x))
        return self.act_out(self.linear_4(x))


class _NsfwB32(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = _Normalization([512])
        self.linear_1, self.linear_2, self.linear_3 = nn.Linear(512, 32), nn.Linear(32, 32), nn.Linear(32, 1)
        self.dropout, self.act, self.act_out = nn.Dropout(0.5), nn.ReLU(), nn.Sigmoid()

    def forward(self, x):
        x = self.act(self.linear_1(self.norm(x)))
        x = self.dropout(self.act(self.linear_2(x)))
        return self.act_out(self.linear_3(x))


class _Layers(nn.Module):
    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


def _published(name: str) -> nn.Module:
    """Each head as its authors' code defines it (h14_nsfw_model.py, simple_inference.py, ...)."""
    if name == "laion-l14":
        return _NsfwL14()
    if name == "laion-b32":
        return _NsfwB32()
    if name == "laion-h14":
        return _Layers(nn.Linear(1024, 1024), nn.ReLU(), nn.Dropout(0.2), nn.Linear(1024, 2048), nn.ReLU(),
                       nn.Dropout(0.2), nn.Linear(2048, 1024), nn.ReLU(), nn.Dropout(0.2), nn.Linear(1024, 256),
                       nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2),
                       nn.Linear(128, 16), nn.Linear(16, 1))
    if name == "laion-v2":
        return _Layers(nn.Linear(768, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                       nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))
    return nn.Linear(HEADS[name].dim, 1)  # aesthetic-predictor v1


def _unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_each_head_equals_its_published_module_on_the_same_file(name, tmp_path):
    spec = HEADS[name]
    path = write_random_head(spec, str(tmp_path / f"{name}.pth"), seed=3)
    reference = _published(name)
    reference.load_state_dict(torch.load(path))  # the published file loads into the published class
    reference.eval()
    x = _unit_rows(5, spec.dim)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).reshape(-1).numpy()
    ours = apply_head(load_head(spec, path), x)
    np.testing.assert_allclose(ours, expected, atol=TOLERANCE, rtol=0)
    assert np.ptp(ours) > 0


def test_the_nsfw_port_loads_from_its_published_zip_and_a_foreign_file_is_refused(tmp_path):
    spec = HEADS["laion-l14"]
    pth = write_random_head(spec, str(tmp_path / "clip_autokeras_binary_nsfw.pth"), seed=1)
    archive = tmp_path / "clip_autokeras_binary_nsfw.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(pth, "clip_autokeras_binary_nsfw.pth")
    x = _unit_rows(3, 768)
    np.testing.assert_array_equal(apply_head(load_head(spec, str(archive)), x), apply_head(load_head(spec, pth), x))
    other = write_random_head(HEADS["laion-v2"], str(tmp_path / "aesthetic.pth"))
    with pytest.raises(ValueError, match="not a nsfw laion-l14 state_dict"):
        load_head(spec, other)


def test_heads_run_in_eval_mode():
    head = build_head(HEADS["laion-v2"])
    x = torch.from_numpy(_unit_rows(2, 768))
    with torch.no_grad():
        assert torch.equal(head(x), head(x))  # dropout off


def _published_watermark(path: str):
    """LAION-5B-WatermarkDetection's inference.py: timm efficientnet_b3a + its classifier."""
    import timm

    model = timm.create_model("efficientnet_b3a", pretrained=False, num_classes=2)
    model.classifier = nn.Sequential(nn.Linear(1536, 625), nn.ReLU(), nn.Dropout(p=0.3), nn.Linear(625, 256),
                                     nn.ReLU(), nn.Linear(256, 2))
    model.load_state_dict(torch.load(path))
    return model.eval()


def test_watermark_equals_the_published_timm_forward(tmp_path):
    import torchvision.transforms as T

    path = write_random_watermark_model(str(tmp_path / "watermark_model_v1.pt"), seed=2)
    images = [Image.open(io.BytesIO(b)) for b in sample_images(3)]
    preprocessing = T.Compose([T.Resize((256, 256)), T.ToTensor(),
                               T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.no_grad():
        logits = _published_watermark(path)(torch.stack([preprocessing(im.convert("RGB")) for im in images]))
        expected = torch.softmax(logits, dim=1)[:, 0].numpy()
    ours = WatermarkModel(path, "cpu").probabilities(np.stack([watermark_pixels(im) for im in images]))
    np.testing.assert_allclose(ours, expected, atol=TOLERANCE, rtol=0)
    torch.save({"weights": torch.load(path)}, tmp_path / "nested.pt")  # inference.py's other form
    nested = WatermarkModel(str(tmp_path / "nested.pt"), "cpu").probabilities(
        np.stack([watermark_pixels(im) for im in images]))
    np.testing.assert_array_equal(nested, ours)


def test_transformers_classifier_equals_its_processor_and_softmax(tmp_path):
    import transformers

    folder = write_tiny_image_classifier(str(tmp_path / "nsfw-vit"), ("normal", "nsfw"), seed=5)
    images = [Image.open(io.BytesIO(b)).convert("RGB") for b in sample_images(4)]
    processor = transformers.AutoImageProcessor.from_pretrained(folder)
    model = transformers.AutoModelForImageClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = model(**processor(images=images, return_tensors="pt")).logits
    expected = torch.softmax(logits, dim=-1)[:, 1].numpy()
    spec = resolve_classifier(folder, "NSFW", "--nsfw_model", "--nsfw_label")  # case ignored when unique
    inputs = ClassifierInputs(spec)
    ours = ImageClassifier(spec, "cpu").probabilities(np.stack([inputs.pixels(im) for im in images]))
    np.testing.assert_allclose(ours, expected, atol=TOLERANCE, rtol=0)
    with pytest.raises(UsageError, match=r"--nsfw_label: .* has no class 'porn' \(its classes: normal, nsfw\)"):
        resolve_classifier(folder, "porn", "--nsfw_model", "--nsfw_label")


def _text_image(text: str = "HELLO WORLD", size=(320, 240)) -> np.ndarray:
    image = Image.new("RGB", size, (200, 220, 240))
    ImageDraw.Draw(image).text((20, 90), text, fill=(10, 10, 10), font=ImageFont.load_default(size=36))
    return np.asarray(image)


def test_text_detector_boxes_drawn_text_and_nothing_else():
    import rapidocr_onnxruntime
    from rapidocr_onnxruntime.ch_ppocr_det import TextDetector as PaddleDetector

    rgb = _text_image()
    boxes = TextDetector().boxes(rgb)
    assert len(boxes) >= 1
    x0, y0, x1, y1 = boxes.min(0)[0], boxes.min(0)[1], boxes.max(0)[2], boxes.max(0)[3]
    assert 10 <= x0 <= 30 and 80 <= y0 <= 100 and 200 <= x1 <= 300 and 110 <= y1 <= 140  # around the text
    area = text_area(boxes, 240, 320)
    assert area == covered(boxes, 240, 320).mean() and 0.05 < area < 0.3
    # the detector's own output, read as boxes, is ours
    model = os.path.join(os.path.dirname(rapidocr_onnxruntime.__file__), MODEL_FILE)
    quads, _ = PaddleDetector({**DET_CONFIG, "model_path": model})(rgb[:, :, ::-1].copy())
    np.testing.assert_array_equal(quads_to_boxes(quads, 240, 320), boxes)
    blank = np.full((240, 320, 3), 128, np.uint8)
    assert len(TextDetector().boxes(blank)) == 0 and text_area(np.zeros((0, 4), np.int32), 240, 320) == 0.0


def test_tmars_mask_fills_each_box_with_its_surroundings_and_leaves_the_rest():
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[:, :100] = (200, 10, 10)  # left half red, right half blue
    rgb[:, 100:] = (10, 10, 200)
    rgb[40:60, 20:60] = 255  # "text" on the red half
    boxes = np.array([[20, 40, 60, 60]], dtype=np.int32)
    out = mask_text(rgb, boxes)
    assert (out[40:60, 20:60] == (200, 10, 10)).all()  # the ring around it is red
    outside = ~covered(boxes, 100, 200)
    np.testing.assert_array_equal(out[outside], rgb[outside])
    assert mask_text(rgb, np.zeros((0, 4), np.int32)) is rgb
