"""An open_clip model on one device, and the CPU-side inputs it needs.

The split follows where work is cheap: `ClipInputs` decodes, resizes and crops images to uint8
pixels and tokenizes captions (CPU threads, in every worker process); `ClipModel` turns uint8
pixels and tokens into L2-normalized embeddings on its device (possibly one shared process per
GPU). uint8 pixels are exactly what open_clip's `ToTensor` sees, so scores equal open_clip's own
preprocessing followed by `encode_image`/`encode_text`.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import warnings

import numpy as np

from curate.models.resolve import HF_HUB, REGISTERED, ModelSpec

_REGISTER_LOCK = threading.Lock()


def register_config(spec: ModelSpec) -> None:
    """Make a model config read from a user's JSON file known to open_clip in this process."""
    if spec.config is None or spec.name in REGISTERED:
        return
    import open_clip

    with _REGISTER_LOCK:
        if spec.name in REGISTERED:
            return
        folder = tempfile.mkdtemp(prefix="curate-model-config-")
        with open(os.path.join(folder, f"{spec.name}.json"), "w", encoding="utf-8") as f:
            json.dump(spec.config, f)
        open_clip.add_model_config(folder)
        REGISTERED[spec.name] = spec.config


def pick_device(device: str) -> str:
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def model_device(device: str, threads: int) -> str:
    """The device a model loads on (auto: CUDA when there is one); on CPU, torch's threads set first."""
    device = pick_device(device)
    if device == "cpu":
        set_cpu_threads(threads)
    return device


def autocast_dtype(device: str, precision: str):
    """bf16 autocast on CUDA by default; fp32 on CPU (CPU autocast is slower than fp32 here)."""
    import torch

    if precision in (None, "", "auto"):
        precision = "bf16" if device.startswith("cuda") else "fp32"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def local_checkpoint(path: str) -> str:
    """A local file for a checkpoint named by hf-hub:org/repo or a remote path (gs://, s3://)."""
    if path.startswith(HF_HUB):
        from open_clip.pretrained import download_pretrained_from_hf
        return download_pretrained_from_hf(path[len(HF_HUB):])
    if "://" not in path:
        return path
    from apache_beam.io.filesystems import FileSystems

    local = os.path.join(tempfile.mkdtemp(prefix="curate-ckpt-"), os.path.basename(path))
    with FileSystems.open(path) as src, open(local, "wb") as dst:
        while chunk := src.read(1 << 24):
            dst.write(chunk)
    return local


def create_model(spec: ModelSpec, device: str = "cpu"):
    """(model in eval mode, open_clip's validation preprocess) for a resolved spec."""
    import open_clip

    register_config(spec)
    pretrained = None
    if spec.pretrained is not None:
        pretrained = spec.pretrained
        if pretrained.startswith(HF_HUB) or "://" in pretrained:
            pretrained = local_checkpoint(pretrained)
    kwargs = {} if spec.quick_gelu is None else {"quick_gelu": spec.quick_gelu}
    with warnings.catch_warnings():
        # resolve() already corrected (and reported) the activation; open_clip would warn again
        warnings.filterwarnings("ignore", message="QuickGELU mismatch")
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.name, pretrained=pretrained, device=device, require_pretrained=True, **kwargs)
    model.eval()
    return model, preprocess


_TORCH_DEFAULT_THREADS: list[int] = []  # torch's own count, read before curate first changes it


def set_cpu_threads(threads: int) -> None:
    """torch's intra-op threads, process-wide: `threads`, or torch's default for 0. A run in a
    process where an earlier run set --torch_threads gets the count it asked for, not the
    leftover: the thread count changes float reduction order, and with it sampled captions."""
    import torch

    if not _TORCH_DEFAULT_THREADS:
        _TORCH_DEFAULT_THREADS.append(torch.get_num_threads())
    wanted = threads or _TORCH_DEFAULT_THREADS[0]
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)  # one SDK process per core wants 1


class ClipModel:
    """uint8 pixels + tokens -> L2-normalized float32 image and text embeddings."""

    def __init__(self, spec: ModelSpec, device: str = "auto", precision: str = "auto", threads: int = 0):
        import torch
        from open_clip.model import get_model_preprocess_cfg

        self.spec = spec
        self.device = model_device(device, threads)
        self.dtype = autocast_dtype(self.device, precision)
        self.model, _ = create_model(spec, self.device)
        self.preprocess_cfg = dict(get_model_preprocess_cfg(self.model))
        self._mean = torch.tensor(self.preprocess_cfg["mean"], device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.preprocess_cfg["std"], device=self.device).view(1, 3, 1, 1)
        self._gpu_inputs = None

    def input_config(self) -> dict:
        """What a worker needs to build matching ClipInputs (picklable, small)."""
        return dict(self.preprocess_cfg)

    def normalize(self, pixels):
        """uint8 NHWC (numpy or tensor) -> normalized float NCHW on the device, as ToTensor+Normalize."""
        import torch

        x = torch.as_tensor(pixels).to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float().div(255)
        return (x - self._mean) / self._std

    def embed(self, pixels: np.ndarray, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.embed_normalized(self.normalize(pixels), tokens)

    def embed_normalized(self, images, tokens) -> tuple[np.ndarray, np.ndarray]:
        import torch
        import torch.nn.functional as F

        tokens = torch.as_tensor(tokens).to(self.device, non_blocking=True)
        with torch.inference_mode(), torch.autocast(self.device.split(":")[0], dtype=self.dtype,
                                                     enabled=self.dtype is not None):
            image = self.image_features(images)
            text = self.model.encode_text(tokens)
        image = F.normalize(image.float(), dim=-1)
        text = F.normalize(text.float(), dim=-1)
        return image.cpu().numpy(), text.cpu().numpy()

    def embed_images(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 NHWC pixels -> L2-normalized float32 image embeddings (no caption: T-MARS's second
        pass, the signals' own CLIP)."""
        import torch
        import torch.nn.functional as F

        images = self.normalize(pixels)
        with torch.inference_mode(), torch.autocast(self.device.split(":")[0], dtype=self.dtype,
                                                     enabled=self.dtype is not None):
            image = self.image_features(images)
        return F.normalize(image.float(), dim=-1).cpu().numpy()

    def image_features(self, images):
        return self.model.encode_image(images)

    def embed_encoded(self, images: list[bytes], tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        """Decode JPEGs on the model's device (nvJPEG on CUDA); returns (image, text, failed indices)."""
        from curate.models.gpu_decode import decode_on_device

        if self._gpu_inputs is None:
            self._gpu_inputs = ClipInputs(self.spec, self.preprocess_cfg)
        pixels, failed = decode_on_device(images, self._gpu_inputs, self.device)
        bad = set(failed)
        keep = [i for i in range(len(images)) if i not in bad]
        if not keep:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), failed
        images_n = (pixels.float().div(255) - self._mean) / self._std
        image, text = self.embed_normalized(images_n, np.asarray(tokens)[keep])
        return image, text, failed


def cosine(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Row-wise cosine of L2-normalized embeddings, float32."""
    return np.einsum("ij,ij->i", image, text, dtype=np.float32)


class ClipInputs:
    """CPU side: image bytes -> uint8 HWC pixels (open_clip's resize/crop), captions -> tokens."""

    def __init__(self, spec: ModelSpec, preprocess_cfg: dict):
        import open_clip
        from open_clip.transform import MaybeToTensor, PreprocessCfg, image_transform_v2

        register_config(spec)
        known = {k: v for k, v in preprocess_cfg.items() if k in PreprocessCfg.__dataclass_fields__}
        steps = image_transform_v2(PreprocessCfg(**known), is_train=False).transforms
        cut = next(i for i, t in enumerate(steps) if isinstance(t, MaybeToTensor))
        self._pil_steps = steps[:cut]  # resize, crop, convert to RGB: everything before ToTensor
        self.size = preprocess_cfg["size"]
        self.resize_mode = preprocess_cfg.get("resize_mode", "shortest")
        self.interpolation = preprocess_cfg.get("interpolation", "bicubic")
        self._tokenizer = open_clip.get_tokenizer(spec.name)

    def pixels(self, data: bytes) -> np.ndarray:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return self.pixels_of(image)

    def pixels_of(self, image) -> np.ndarray:
        """A PIL image (decoded once for several models) -> uint8 HWC pixels."""
        for step in self._pil_steps:
            image = step(image)
        pixels = np.asarray(image, dtype=np.uint8)
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"unexpected pixel shape {pixels.shape}")
        return pixels

    def tokens(self, captions: list[str]) -> np.ndarray:
        return self._tokenizer(captions).numpy()
