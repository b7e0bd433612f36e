"""Face blurring: DataComp's geometry (img2dataset's BoundingBoxBlurrer), boxes from the input or
MTCNN, and a run whose shards hold only blurred images while dedup saw the originals."""
from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import tarfile

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps

from curate.hashes.phash import phash, to_hex
from curate.safety.blur import blur_boxes
from curate.safety.face_stage import BlurFaces
from curate.safety.faces import BadBoxes, FaceDetector, parse_boxes, to_stored, upright
from curate.sample import Sample
from tests.conftest import SAMPLE, read_ledger, run_curate

FAMILY, MIRROR, FOOD = "000000000790", "000000229358", "000000062554"
# faces on the bundled photos (normalized [x0, y0, x1, y1]): the family's three visible faces,
# one box running off the bottom-right corner, two overlapping; the man in the mirror
FAMILY_BOXES = [[0.597, 0.282, 0.647, 0.391], [0.806, 0.346, 0.866, 0.488], [0.378, 0.239, 0.416, 0.296],
                [0.9, 0.85, 1.0, 1.0], [0.1, 0.3, 0.25, 0.5], [0.2, 0.4, 0.3, 0.6]]
MIRROR_BOXES = [[0.43, 0.239, 0.478, 0.331]]


def _pixels(stem: str) -> np.ndarray:
    return np.asarray(Image.open(os.path.join(SAMPLE, "images", f"{stem}.jpg")).convert("RGB"))


def reference_blur(img: np.ndarray, boxes) -> np.ndarray:
    """img2dataset's BoundingBoxBlurrer as DataComp ran it, computed directly on the whole image."""
    height, width = img.shape[:2]
    img = img.astype(np.float32) / 255.0
    mask = np.zeros_like(img)
    largest = 0
    for x0, y0, x1, y1 in boxes:
        box = [int(x0 * width), int(y0 * height), int(x1 * width), int(y1 * height)]
        side = max(box[2] - box[0], box[3] - box[1])
        largest = max(largest, side)
        box = [int(box[0] - 0.1 * side), int(box[1] - 0.1 * side), int(box[2] + 0.1 * side), int(box[3] + 0.1 * side)]
        box = [np.clip(box[0], 0, width - 1), np.clip(box[1], 0, height - 1), np.clip(box[2], 0, width - 1),
               np.clip(box[3], 0, height - 1)]
        mask[box[1]:box[3], box[0]:box[2], ...] = 1
    sigma = 0.1 * largest
    ksize = int(2 * np.ceil(4 * sigma)) + 1
    blurred_img = cv2.GaussianBlur(img, (ksize, ksize), sigmaX=sigma)
    blurred_mask = cv2.GaussianBlur(mask, (ksize, ksize), sigmaX=sigma)
    return ((img * (1 - blurred_mask) + blurred_img * blurred_mask) * 255.0).astype(np.uint8)


@pytest.mark.parametrize("stem,boxes", [(FAMILY, FAMILY_BOXES), (FAMILY, FAMILY_BOXES[:1]), (MIRROR, MIRROR_BOXES)])
def test_blur_equals_the_reference_geometry(stem, boxes):
    original = _pixels(stem)
    blurred = blur_boxes(original, boxes)
    assert np.array_equal(blurred, reference_blur(original, boxes))
    h, w = original.shape[:2]
    x0, y0, x1, y1 = (int(boxes[0][0] * w), int(boxes[0][1] * h), int(boxes[0][2] * w), int(boxes[0][3] * h))
    face = np.abs(blurred[y0:y1, x0:x1].astype(int) - original[y0:y1, x0:x1]).mean()
    assert face > 3  # the face is blurred
    assert np.array_equal(blurred[:5, :5], original[:5, :5])  # far from every box: untouched
    assert blur_boxes(original, []) is original


def test_boxes_from_input_cells_and_exif_orientation():
    assert parse_boxes(None) is None and parse_boxes("null") is None
    assert parse_boxes([]) == [] and parse_boxes("[[0.1, 0.2, 0.3, 0.4]]") == [[0.1, 0.2, 0.3, 0.4]]
    assert parse_boxes(np.array([[-0.1, 0.2, 1.3, 0.4]])) == [[0.0, 0.2, 1.0, 0.4]]  # clipped to the image
    for bad in ("[[0.1, 0.2]]", "nope", [["a", 0, 1, 1]], [[0, 0, float("nan"), 1]]):
        with pytest.raises(BadBoxes):
            parse_boxes(bad)
    stored = np.zeros((60, 100, 3), np.uint8)
    stored[10:20, 30:50] = 255
    for orientation in range(1, 9):
        image = Image.fromarray(stored)
        exif = image.getexif()
        exif[0x0112] = orientation
        data = io.BytesIO()
        image.save(data, "PNG", exif=exif.tobytes())
        shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data.getvalue()))))
        assert np.array_equal(upright(stored, orientation), shown)
        ys, xs = np.nonzero(shown[:, :, 0])
        h, w = shown.shape[:2]
        found = to_stored([[xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h]], orientation)[0]
        assert np.allclose(found, [0.3, 10 / 60, 0.5, 20 / 60]), orientation


def test_mtcnn_finds_the_faces_on_the_family_photo_and_none_on_the_food():
    detector = FaceDetector()
    boxes = detector.detect(_pixels(FAMILY))
    for x0, y0, x1, y1 in FAMILY_BOXES[:3]:  # every visible face's centre lies in a detected box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        assert any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes), (cx, cy, boxes)
    assert len(boxes) <= 4
    assert detector.detect(_pixels(FOOD)) == []


def test_samples_without_usable_boxes_are_dropped_not_shipped_unblurred():
    stage = BlurFaces("faces", detector="none")
    stage.setup()
    image = open(os.path.join(SAMPLE, "images", f"{FOOD}.jpg"), "rb").read()
    samples = [Sample("a" * 32, image=image, image_format="jpg"),
               Sample("b" * 32, image=image, image_format="jpg", extras={"faces": "[[0, 0]]"}),
               Sample("c" * 32, image=image, image_format="jpg", extras={"faces": []}),
               Sample("d" * 32, image=b"\xff\xd8\xff broken", image_format="jpg", extras={"faces": [[0, 0, 1, 1]]}),
               Sample("e" * 32, url="http://example.com/a.jpg")]
    assert stage.judge_batch(samples) == ["no_face_boxes", "bad_face_boxes", None, "decode_error", None]
    assert samples[2].image == image and samples[2].values == {"face_count": 0, "face_bboxes": [],
                                                                "faces_blurred": False}


def _shard_members(out) -> dict[str, bytes]:
    members = {}
    for path in glob.glob(str(out / "shards" / "*.tar")):
        with tarfile.open(path) as tar:
            members.update({m.name: tar.extractfile(m).read() for m in tar})
    return members


def test_a_run_ships_only_blurred_images_and_dedup_sees_the_originals(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    family_png = io.BytesIO()
    Image.open(os.path.join(SAMPLE, "images", f"{FAMILY}.jpg")).save(family_png, "PNG")  # lossless: exact check
    originals = {"family.png": family_png.getvalue(),
                 "mirror.jpg": open(os.path.join(SAMPLE, "images", f"{MIRROR}.jpg"), "rb").read(),
                 "food.jpg": open(os.path.join(SAMPLE, "images", f"{FOOD}.jpg"), "rb").read()}
    for name, data in originals.items():
        (folder / name).write_bytes(data)
    rows = [{"file": "family.png", "caption": "a family at a table", "face_bboxes": FAMILY_BOXES},
            {"file": "mirror.jpg", "caption": "a man in a mirror", "face_bboxes": None},
            {"file": "food.jpg", "caption": "plates of food"}]
    (folder / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    run_curate("--pipeline", "dedup", "--input", str(folder), "--dedup", "phash", "--blur_faces", output=out)

    ledger = read_ledger(out)
    by_file = {os.path.basename(k): r for k, r in zip(ledger.source_key, ledger.to_dict("records"))}
    members = _shard_members(out)
    sidecar = pd.concat(pd.read_parquet(p) for p in glob.glob(str(out / "shards" / "*.parquet"))).set_index("key")
    shipped = {}
    for name, row in by_file.items():
        data = members[f"{row['uid']}.{row['image_format']}"]
        meta = json.loads(members[f"{row['uid']}.json"])
        shipped[name] = data
        assert row["sha256"] == hashlib.sha256(data).hexdigest() == meta["sha256"] == sidecar.loc[row["uid"], "sha256"]
        assert row["phash"] == to_hex(phash(originals[name]))  # dedup hashed the original
        assert meta["face_count"] == row["face_count"] == sidecar.loc[row["uid"], "face_count"]
        assert meta["faces_blurred"] == row["faces_blurred"]
    family = by_file["family.png"]
    assert family["face_count"] == len(FAMILY_BOXES) and family["faces_blurred"]
    assert np.allclose(np.stack(family["face_bboxes"]), FAMILY_BOXES)
    decoded = np.asarray(Image.open(io.BytesIO(shipped["family.png"])).convert("RGB"))
    assert np.array_equal(decoded, reference_blur(_pixels(FAMILY), FAMILY_BOXES))
    mirror = by_file["mirror.jpg"]  # no boxes in the input: MTCNN's
    assert mirror["image_format"] == "jpg" and mirror["face_count"] >= 1 and mirror["faces_blurred"]
    (x0, y0, x1, y1), = MIRROR_BOXES
    assert any(b[0] <= (x0 + x1) / 2 <= b[2] and b[1] <= (y0 + y1) / 2 <= b[3] for b in mirror["face_bboxes"])
    assert shipped["mirror.jpg"] != originals["mirror.jpg"]
    food = by_file["food.jpg"]
    assert food["face_count"] == 0 and not food["faces_blurred"] and shipped["food.jpg"] == originals["food.jpg"]
    assert originals["family.png"] not in b"".join(members.values())
