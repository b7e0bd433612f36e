"""T-MARS in the scoring stage: the score of each image with its detected text masked, and the
pool cut on that score (--score_field masked), end to end on FnApiRunner."""
import io
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from curate.models.text_boxes import TextDetector, mask_text, text_area
from curate.models.tiny import TINY_CONFIG, write_tiny_model
from curate.run import main
from curate.score.pool_cut import keep_count
from tests.conftest import read_ledger, run_curate
from tests.test_models import SCORE_TOLERANCE, direct_scores, sample_images


PHOTOS = (1, 3, 4, 5, 6, 10)  # bundled photos in which the detector finds no text of their own


def with_banner(jpeg: bytes, text: str) -> bytes:
    """A photo with a white banner of black text across it (what the detector must find)."""
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 30, image.width - 10, 100), fill=(255, 255, 255))
    draw.text((20, 40), text, fill=(0, 0, 0), font=ImageFont.load_default(size=40))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    return out.getvalue()


def image_folder(root, n_text: int = 3, n_plain: int = 3) -> list[tuple[str, bytes, str]]:
    """An image folder input (name.jpg + name.txt): photos with a text banner and plain photos."""
    photos = [sample_images(11)[i] for i in PHOTOS[:n_text + n_plain]]
    items = []
    for i, photo in enumerate(photos):
        caption = f"a photo of a sale sign {i}" if i < n_text else f"a plain photo of a scene {i}"
        data = with_banner(photo, f"SALE {i} NOW") if i < n_text else photo
        items.append((f"img{i:02d}", data, caption))
    os.makedirs(root, exist_ok=True)
    for name, data, caption in items:
        with open(os.path.join(root, f"{name}.jpg"), "wb") as f:
            f.write(data)
        with open(os.path.join(root, f"{name}.txt"), "w", encoding="utf-8") as f:
            f.write(caption)
    return items


@pytest.fixture(scope="module")
def tmars_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tmars")
    items = image_folder(str(folder / "images"))
    config, checkpoint = write_tiny_model(str(folder / "model"), name="tiny-tmars", seed=21)
    out = folder / "out"
    stats = run_curate("--pipeline", "dedup", "--input", str(folder / "images"), "--clip_model", config,
                       "--clip_pretrained", checkpoint, "--tmars", "--score_field", "masked",
                       "--clip_keep_fraction", "0.5", "--dedup", "none", "--device", "cpu", "--torch_threads", "1",
                       output=out)
    return items, checkpoint, read_ledger(out), stats


def test_masked_scores_equal_open_clip_on_the_masked_images(tmars_run):
    items, checkpoint, ledger, stats = tmars_run
    by_key = {os.path.basename(k).split(".")[0]: row for k, row in zip(ledger.source_key, ledger.itertuples())}
    detector = TextDetector()
    masked_images, areas, captions, plain = [], [], [], []
    for name, data, caption in items:
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        boxes = detector.boxes(rgb)
        masked = Image.fromarray(mask_text(rgb, boxes))
        buffer = io.BytesIO()
        masked.save(buffer, format="PNG")  # lossless: the same pixels the stage scored
        masked_images.append(buffer.getvalue())
        areas.append(text_area(boxes, *rgb.shape[:2]))
        captions.append(caption)
        plain.append(data)
    expected, _ = direct_scores(TINY_CONFIG, checkpoint, False, masked_images, captions)
    ours = np.array([by_key[name].masked_clip_score for name, _, _ in items])
    np.testing.assert_allclose(ours, expected, atol=SCORE_TOLERANCE, rtol=0)
    np.testing.assert_allclose([by_key[name].text_area for name, _, _ in items], areas, rtol=1e-6)
    assert all(a > 0.02 for a in areas[:3]) and all(a == 0 for a in areas[3:])  # banners found, nothing else
    unmasked, _ = direct_scores(TINY_CONFIG, checkpoint, False, plain, captions)
    np.testing.assert_allclose([by_key[n].clip_score for n, _, _ in items], unmasked, atol=SCORE_TOLERANCE, rtol=0)
    # no text, nothing masked: the two scores are one
    np.testing.assert_allclose(ours[3:], unmasked[3:], atol=SCORE_TOLERANCE, rtol=0)
    assert np.abs(ours[:3] - unmasked[:3]).max() > 1e-4
    assert stats["stages"]["Score"]["tmars"] == {"text_detector": "default", "score_field": "masked"}


def test_the_pool_cut_reads_the_masked_score(tmars_run):
    _, _, ledger, stats = tmars_run
    cut = stats["stages"]["Score"]["cuts"]["keep_fraction"]["masked_clip"]
    k = keep_count(0.5, len(ledger))
    expected = np.sort(ledger.masked_clip_score.to_numpy(np.float32))[::-1][k - 1]
    assert cut["threshold"] == float(expected) and cut["pool"] == len(ledger) == 6
    assert (ledger.masked_clip_threshold == expected).all() and "clip_threshold" not in ledger.columns
    kept = ledger.status == "kept"
    assert (kept == (ledger.masked_clip_score.astype(np.float32) >= expected)).all()
    assert (ledger[~kept].reason == "score:below_threshold").all() and kept.sum() == 3


@pytest.mark.parametrize("args, message", [
    (["--score_field", "masked"], "--score_field masked: the masked score needs --tmars"),
    (["--tmars", "--text_detector", "none"], "--tmars: needs a text detector"),
    (["--tmars", "--score_decode", "gpu"], "--tmars: text is detected and masked on CPU-decoded images"),
    (["--text_detector", "tesseract"], "--text_detector: 'tesseract' is not one of none, default"),
    (["--score_field", "best"], "--score_field: 'best' is not score or masked"),
])
def test_bad_tmars_flags_exit_2_with_one_line(args, message, tmp_path, capsys):
    config, checkpoint = write_tiny_model(str(tmp_path / "m"), name="tiny-tmars-flags", seed=1)
    argv = ["--pipeline", "laion", "--clip_model", config, "--clip_pretrained", checkpoint, *args,
            "--output", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_tmars_needs_a_scoring_model(tmp_path, capsys):
    assert main(["--pipeline", "metaclip", "--tmars", "--output", str(tmp_path / "out")]) == 2
    assert "--tmars: needs --clip_model or --dfn_model" in capsys.readouterr().err
