"""Convert images to a format training loaders read, before they are written to the shards.

open_clip's loader takes the `jpg;png;jpeg;webp` members of a sample: a GIF, BMP or TIFF
sample in a shard has no image there and is skipped or fails. `--convert_images loadable`
re-encodes just those (JPEG, or PNG where the image has transparency); `jpg`, `png` or `webp`
re-encodes every image that is not already in that format. EXIF orientation is applied, an
animated image keeps its first frame. The ledger records `converted_from` (the original
format); `sha256` and `image_format` describe the bytes in the shard. Off by default.
"""
from __future__ import annotations

import hashlib
import io

import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions

from curate.flags import one_of, in_range
from curate.sample import Sample
from curate.stage import SampleStage

LOADABLE = ("jpg", "png", "webp")  # what open_clip's WebDataset pipeline decodes
MODES = ("none", "loadable", *LOADABLE)
CONVERTED_FROM = "converted_from"
DECODE_ERROR = "decode_error"
_PIL_NAMES = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}


class ConvertOptions(PipelineOptions):
    """Image format conversion for the shards (what training loaders read)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--convert_images", default="none",
                            help=f"{' | '.join(MODES)}: loadable re-encodes images open_clip's loader cannot "
                                 "read (GIF, BMP, TIFF, ...) as JPEG, or PNG with transparency; jpg/png/webp "
                                 "re-encodes every image not already in that format")
        parser.add_argument("--convert_quality", type=int, default=95,
                            help="JPEG / WebP quality of converted images (1-100)")


def _has_alpha(image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


LOADABLE_TARGET = "loadable"  # JPEG, or PNG where the image has transparency


def encode(data: bytes, target: str, quality: int) -> tuple[bytes, str]:
    """(bytes, format) of the image re-encoded as `target` (or LOADABLE_TARGET); one decode.
    ValueError("decode_error") when it does not decode."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.seek(0)  # an animation's first frame
            image = ImageOps.exif_transpose(image)
            alpha = _has_alpha(image)
            if target == LOADABLE_TARGET:
                target = "png" if alpha else "jpg"
            if alpha:
                image = _flattened(image) if target == "jpg" else image.convert("RGBA")
            elif image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
            out = io.BytesIO()
            options = {"quality": quality} if target in ("jpg", "webp") else {}
            image.save(out, format=_PIL_NAMES[target], **options)
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ValueError(DECODE_ERROR) from e
    return out.getvalue(), target


def _flattened(image):
    """Transparent pixels over white (JPEG has no alpha)."""
    from PIL import Image

    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


class ConvertImages(SampleStage):
    """Re-encode images training loaders cannot read (or all, to one format)."""

    step = "ConvertImages"
    name = "convert"
    options = (ConvertOptions,)
    fields = {CONVERTED_FROM: pa.string()}

    def __init__(self, mode: str = "loadable", quality: int = 95):
        super().__init__()
        self.mode = mode
        self.quality = quality

    @classmethod
    def from_run(cls, run) -> "ConvertImages | None":
        o = run.view(ConvertOptions)
        one_of("--convert_images", o.convert_images, MODES)
        in_range("--convert_quality", o.convert_quality, 1, 100)
        return None if o.convert_images == "none" else cls(o.convert_images, o.convert_quality)

    def target(self, sample: Sample) -> str | None:
        """The format this sample's image becomes (LOADABLE_TARGET: decided by its alpha), or None
        to keep its bytes."""
        fmt = sample.image_format
        if self.mode == "loadable":
            return None if fmt in LOADABLE else LOADABLE_TARGET
        return None if fmt == self.mode else self.mode

    def judge(self, sample: Sample) -> str | None:
        if sample.image is None:
            return None
        target = self.target(sample)
        if target is None:
            return None
        try:
            data, target = encode(sample.image, target, self.quality)
        except ValueError as e:
            return str(e)
        sample.values[CONVERTED_FROM] = sample.image_format or "unknown"
        sample.image, sample.image_format = data, target
        sample.sha256 = hashlib.sha256(data).hexdigest()
        return None

