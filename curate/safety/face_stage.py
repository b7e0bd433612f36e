"""BlurFaces: faces blurred in every image a shard keeps, as DataComp blurred its pool.

The last image stage of every recipe (before ConvertImages), so scores, dedup, captions and
every model saw the original: only the shard, its sidecar row and `<uid>.json` hold the blurred
image. Boxes come from the input's `--face_bboxes_col` (DataComp's normalized [x0, y0, x1, y1]
on the stored pixels) when the sample has that value, else from the detector (faces.py). An
image with boxes is blurred (blur.py) and re-encoded in its own format (JPEG / WebP at
--face_blur_quality; PNG for others and for animations, whose later frames would keep the
faces), EXIF and ICC profile kept; one without keeps its bytes. The ledger gets `face_count`,
`face_bboxes` (normalized, on the stored pixels), `faces_blurred`, and `sha256` /
`image_format` describe the shard's bytes.
"""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pyarrow as pa

from curate.filters.image_facts import open_image
from curate.flags import in_range, one_of, str2bool
from curate.safety.blur import blur_boxes
from curate.safety.faces import BadBoxes, FaceDetector, parse_boxes, to_stored, upright
from curate.safety.options import DETECTORS, FaceOptions
from curate.sample import Sample
from curate.stage import SampleStage

FACE_COUNT, FACE_BBOXES, FACES_BLURRED = "face_count", "face_bboxes", "faces_blurred"
_KEEPS_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
_ORIENTATION = 0x0112


def _decode(data: bytes):
    """(pixels as stored, RGB or RGBA; EXIF orientation; PIL save options; animated?)."""
    with open_image(data) as im:
        animated = getattr(im, "n_frames", 1) > 1
        im.seek(0)
        alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
        keep = {k: im.info[k] for k in ("exif", "icc_profile") if im.info.get(k)}
        orientation = im.getexif().get(_ORIENTATION, 1)
        pixels = np.asarray(im.convert("RGBA" if alpha else "RGB"))
    return pixels, orientation, keep, animated


def _encode(pixels: np.ndarray, fmt: str | None, keep: dict, animated: bool, quality: int) -> tuple[bytes, str]:
    from PIL import Image

    target = fmt if fmt in _KEEPS_FORMAT and not animated and not (fmt == "jpg" and pixels.shape[2] == 4) else "png"
    out = io.BytesIO()
    options = {"quality": quality} if target in ("jpg", "webp") else {}
    Image.fromarray(pixels).save(out, format=_KEEPS_FORMAT[target], **keep, **options)
    return out.getvalue(), target


class BlurFaces(SampleStage):
    """Blur faces in every image the shards keep (--blur_faces; boxes from the input or MTCNN)."""

    step = "BlurFaces"
    name = "faces"
    options = (FaceOptions,)
    fields = {FACE_COUNT: pa.int32(), FACE_BBOXES: pa.list_(pa.list_(pa.float64())), FACES_BLURRED: pa.bool_()}

    def __init__(self, column: str = "face_bboxes", detector: str = "mtcnn", quality: int = 95):
        super().__init__()
        self.column = column
        self.detector_name = detector
        self.quality = quality

    @classmethod
    def from_run(cls, run) -> "BlurFaces | None":
        o = run.view(FaceOptions)
        one_of("--face_detector", o.face_detector, DETECTORS)
        in_range("--face_blur_quality", o.face_blur_quality, 1, 100)
        if not str2bool(o.blur_faces):
            return None
        return cls(o.face_bboxes_col, o.face_detector, o.face_blur_quality)

    def prepare(self) -> None:
        if self.detector_name == "mtcnn":
            FaceDetector()  # a missing package fails here, before the run

    def setup(self) -> None:
        self.detector = FaceDetector() if self.detector_name == "mtcnn" else None

    def judge(self, sample: Sample) -> str | None:
        if sample.image is None:
            return None  # a kept URL without image: nothing to blur
        try:
            given = parse_boxes(sample.extras.get(self.column))
        except BadBoxes:
            return "bad_face_boxes"
        if given is None and self.detector is None:
            return "no_face_boxes"
        try:
            pixels, orientation, keep, animated = _decode(sample.image)
        except ValueError as e:
            return str(e)
        boxes = given if given is not None else to_stored(self.detector.detect(upright(pixels, orientation)),
                                                          orientation)
        sample.values[FACE_COUNT] = len(boxes)
        sample.values[FACE_BBOXES] = boxes
        sample.values[FACES_BLURRED] = bool(boxes)
        if boxes:
            data, fmt = _encode(blur_boxes(pixels, boxes), sample.image_format, keep, animated, self.quality)
            sample.image, sample.image_format = data, fmt
            sample.sha256 = hashlib.sha256(data).hexdigest()
        return None
