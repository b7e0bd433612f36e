"""Text in images: where it is (boxes), how much of the image it covers, and the image with it
masked out as T-MARS masks it.

`--text_detector default` is PaddleOCR's PP-OCRv4 text detection network as rapidocr-onnxruntime
1.4.x ships it inside its wheel (an ONNX file: it runs offline, on CPU threads, with no weights
to fetch), with rapidocr's DB post-processing (threshold 0.3, box threshold 0.5, unclip 1.6,
dilation) and PaddleOCR's own detection size: the longer side at most 960 px (rapidocr's
default upscales the shorter side to 736 px, ~3.5x slower on web-sized images, and its "max"
mode lets images up to 2000 px through at full size).
A box is the axis-aligned rectangle around a detected text quadrilateral, in image pixels.

- `text_area`: the share of the image's pixels inside the union of the boxes (0 without text).
- T-MARS (Maini et al., 2023) masks the detected text and scores CLIP similarity on the result;
  the paper inpaints the boxes with the colour around them (its released code has only the
  detector). Here each box is filled with the mean colour of a ring of pixels around it (RING of
  the image's longer side, at least 2 px) that no box covers; all rings are read from the
  original image, so the fill does not depend on box order.
"""
from __future__ import annotations

import importlib.util
import io
import os
import threading

import numpy as np

from curate.errors import UsageError

DETECTORS = ("default",)
RING = 0.02  # ring width around a box, as a share of the image's longer side
DET_CONFIG = {"limit_side_len": 960, "limit_type": "max", "thresh": 0.3, "box_thresh": 0.5,
              "max_candidates": 1000, "unclip_ratio": 1.6, "use_dilation": True, "score_mode": "fast",
              "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "use_cuda": False, "use_dml": False}
MODEL_FILE = os.path.join("models", "ch_PP-OCRv4_det_infer.onnx")


def check_detector(name: str, flag: str = "--text_detector") -> str:
    """A known detector whose package is installed (checked before the run, without importing it)."""
    if name not in DETECTORS:
        raise UsageError(f"{flag}: {name!r} is not one of none, {', '.join(DETECTORS)}")
    if importlib.util.find_spec("rapidocr_onnxruntime") is None:
        raise UsageError(f"{flag}: {name} needs rapidocr-onnxruntime: pip install 'curate[signals]'")
    return name


class TextDetector:
    """RGB uint8 [h, w, 3] -> int32 boxes [n, 4] (x0, y0, x1, y1; x1 and y1 exclusive), sorted."""

    def __init__(self, name: str = "default", threads: int = 1):
        import rapidocr_onnxruntime
        from rapidocr_onnxruntime.ch_ppocr_det import TextDetector as PaddleDetector
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

        check_detector(name)
        model = os.path.join(os.path.dirname(rapidocr_onnxruntime.__file__), MODEL_FILE)
        # one onnxruntime thread per call: the decode threads run several images at once
        self._detector = PaddleDetector({**DET_CONFIG, "model_path": model, "intra_op_num_threads": threads,
                                         "inter_op_num_threads": threads})
        # rapidocr's own call picks the size from the image (and stores it on the detector: not
        # thread-safe); PaddleOCR's rule is one fixed limit, built once here
        self._resize = DetPreProcess(DET_CONFIG["limit_side_len"], DET_CONFIG["limit_type"], DET_CONFIG["mean"],
                                     DET_CONFIG["std"])

    def boxes(self, rgb: np.ndarray) -> np.ndarray:
        """Every thread may call it at once (the session and the post-processing keep no state)."""
        height, width = rgb.shape[:2]
        tensor = self._resize(np.ascontiguousarray(rgb[:, :, ::-1]))  # PaddleOCR's models read BGR
        if tensor is None:
            return np.zeros((0, 4), dtype=np.int32)
        maps = self._detector.infer(tensor)[0]
        quads, _ = self._detector.postprocess_op(maps, (height, width))
        quads = self._detector.filter_tag_det_res(quads, (height, width))
        return quads_to_boxes(quads, height, width)


def quads_to_boxes(quads, height: int, width: int) -> np.ndarray:
    if quads is None or len(quads) == 0:
        return np.zeros((0, 4), dtype=np.int32)
    quads = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    x0 = np.clip(np.floor(quads[:, :, 0].min(1)), 0, width)
    y0 = np.clip(np.floor(quads[:, :, 1].min(1)), 0, height)
    x1 = np.clip(np.floor(quads[:, :, 0].max(1)) + 1, 0, width)
    y1 = np.clip(np.floor(quads[:, :, 1].max(1)) + 1, 0, height)
    boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.int32)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    return boxes[np.lexsort((boxes[:, 2], boxes[:, 0], boxes[:, 1]))] if len(boxes) else boxes


def covered(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool [h, w]: the pixels inside some box."""
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def text_area(boxes: np.ndarray, height: int, width: int) -> float:
    """The share of the image inside the union of the boxes."""
    if len(boxes) == 0 or height * width == 0:
        return 0.0
    return float(covered(boxes, height, width).sum()) / (height * width)


def mask_text(rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The image with every box filled with the mean colour of the uncovered ring around it."""
    if len(boxes) == 0:
        return rgb
    height, width = rgb.shape[:2]
    text = covered(boxes, height, width)
    pad = max(2, round(RING * max(height, width)))
    background = rgb[~text]
    fallback = (background if len(background) else rgb.reshape(-1, 3)).mean(0)
    out = rgb.copy()
    for x0, y0, x1, y1 in boxes:
        ys, xs = slice(max(0, y0 - pad), min(height, y1 + pad)), slice(max(0, x0 - pad), min(width, x1 + pad))
        ring = rgb[ys, xs][~text[ys, xs]]
        colour = ring.mean(0) if len(ring) else fallback
        out[y0:y1, x0:x1] = np.round(colour).astype(np.uint8)
    return out


_DETECTORS: dict[str, TextDetector] = {}
_LOCK = threading.Lock()


def process_detector(name: str) -> TextDetector:
    """One detector per process (an onnxruntime session), shared by its decode threads."""
    with _LOCK:
        if name not in _DETECTORS:
            _DETECTORS[name] = TextDetector(name)
        return _DETECTORS[name]


def decoded_rgb(data: bytes):
    """(PIL image, its RGB pixels) of image bytes, decoded once for every model that reads them."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))  # in memory: nothing to close
    image.load()
    return image, np.asarray(image.convert("RGB"))


def masked_pixels(data: bytes, inputs, detector: str) -> tuple[np.ndarray, np.ndarray, float]:
    """T-MARS on the decode threads: (the model's pixels of the image, of the image with its text
    masked, text_area), from one decode; `inputs` is the model's ClipInputs (or HfClipInputs)."""
    from PIL import Image

    image, rgb = decoded_rgb(data)
    boxes = process_detector(detector).boxes(rgb)
    height, width = rgb.shape[:2]
    masked = image if len(boxes) == 0 else Image.fromarray(mask_text(rgb, boxes))
    return inputs.pixels_of(image), inputs.pixels_of(masked), text_area(boxes, height, width)
