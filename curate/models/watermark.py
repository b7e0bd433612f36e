"""LAION's watermark detector (LAION-5B-WatermarkDetection), rebuilt as published.

timm `efficientnet_b3a` (num_classes=2) whose classifier is replaced by Linear(1536, 625) -> ReLU
-> Dropout(0.3) -> Linear(625, 256) -> ReLU -> Linear(256, 2); input: the RGB image resized to
256x256 (square, aspect not kept; torchvision's Resize on a PIL image, i.e. PIL bilinear), ImageNet
mean/std; `watermark_score = softmax(logits)[:, 0]`. Its `models/watermark_model_v1.pt` is a
state_dict (their inference.py also reads one nested under "weights"): both load as they are.
The CPU half (`watermark_pixels`) runs on the decode threads, the forward pass on the device.
"""
from __future__ import annotations

import warnings

import numpy as np

SIZE = 256
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
URL = "https://github.com/LAION-AI/LAION-5B-WatermarkDetection/raw/main/models/watermark_model_v1.pt"
WATERMARK_CLASS = 0


def build_watermark_model():
    """The published architecture, random-init, in eval mode."""
    import timm
    from torch import nn

    with warnings.catch_warnings():  # timm 1.x maps the published name to efficientnet_b3 (same network)
        warnings.filterwarnings("ignore", message=".*deprecated model name.*")
        model = timm.create_model("efficientnet_b3a", pretrained=False, num_classes=2)
    model.classifier = nn.Sequential(nn.Linear(1536, 625), nn.ReLU(), nn.Dropout(p=0.3), nn.Linear(625, 256),
                                     nn.ReLU(), nn.Linear(256, 2))
    return model.eval()


def load_watermark_model(path: str):
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "weights" in state:
        state = state["weights"]
    model = build_watermark_model()
    model.load_state_dict(state)
    return model.eval()


def write_random_watermark_model(path: str, seed: int = 0) -> str:
    """A seeded random-init state_dict in the published layout (what tests load offline)."""
    import torch

    torch.manual_seed(seed)
    torch.save(build_watermark_model().state_dict(), path)
    return path


def watermark_pixels(image) -> np.ndarray:
    """A PIL image -> uint8 [256, 256, 3]: what torchvision's Resize((256, 256)) gives before ToTensor."""
    from PIL import Image

    return np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), dtype=np.uint8)


class WatermarkModel:
    """uint8 [n, 256, 256, 3] -> float32 [n] watermark probabilities, on one device."""

    def __init__(self, path: str, device: str, dtype=None):
        import torch

        self.device = device
        self.dtype = dtype  # autocast dtype (bf16 on CUDA by default), None for fp32
        self.model = load_watermark_model(path).to(device)
        self._mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(STD, device=device).view(1, 3, 1, 1)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        x = torch.as_tensor(pixels).to(self.device).permute(0, 3, 1, 2).float().div(255)
        x = (x - self._mean) / self._std
        with torch.inference_mode(), torch.autocast(self.device.split(":")[0], dtype=self.dtype,
                                                     enabled=self.dtype is not None):
            logits = self.model(x)
        return torch.softmax(logits.float(), dim=1)[:, WATERMARK_CLASS].cpu().numpy()
