"""JPEG decode, resize and crop on the model's device (torchvision's nvJPEG path on CUDA).

On a GPU worker the CPU decode threads can starve the model (a ViT-B/32 on an H100 eats
~10k images/s); decoding on the GPU moves that work beside the model. Resizing is torchvision's
antialiased bicubic on tensors, which differs from PIL's bicubic by about one grey level, so
scores differ from the CPU path in the third decimal (see tests/test_models.py). Non-JPEG images
and JPEGs nvJPEG refuses (CMYK, progressive corner cases) go through the CPU path instead.
"""
from __future__ import annotations

JPEG_MAGIC = b"\xff\xd8"


def _resize_crop(image, inputs):
    """open_clip's validation resize for 'shortest' mode on a CHW uint8 tensor."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    size = inputs.size if isinstance(inputs.size, int) else inputs.size[0]
    mode = InterpolationMode.BILINEAR if inputs.interpolation == "bilinear" else InterpolationMode.BICUBIC
    image = F.resize(image, size, interpolation=mode, antialias=True)
    return F.center_crop(image, [size, size])


def decode_on_device(images: list[bytes], inputs, device: str):
    """(uint8 NCHW tensor on `device` for the images that decode, indices that failed)."""
    import numpy as np
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    square = isinstance(inputs.size, int) or inputs.size[0] == inputs.size[1]
    on_device = square and inputs.resize_mode == "shortest"
    out, failed = [], []
    jpeg_at = [i for i, data in enumerate(images) if on_device and data[:2] == JPEG_MAGIC]
    decoded = {}
    if jpeg_at:
        encoded = [torch.frombuffer(bytearray(images[i]), dtype=torch.uint8) for i in jpeg_at]
        try:
            batch = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:  # one bad file fails the batch call: find it image by image
            batch = []
            for data in encoded:
                try:
                    batch.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
                except RuntimeError:
                    batch.append(None)
        decoded = dict(zip(jpeg_at, batch))
    for i, data in enumerate(images):
        image = decoded.get(i)
        if image is not None:
            out.append(_resize_crop(image, inputs))
            continue
        try:  # not a JPEG, or one nvJPEG refused: PIL on the CPU
            out.append(torch.from_numpy(np.array(inputs.pixels(data))).permute(2, 0, 1).to(device))
        except Exception:  # noqa: BLE001 (any undecodable image is one failed sample)
            failed.append(i)
    if not out:
        return None, failed
    return torch.stack(out), failed
