"""LAION's heads on CLIP image embeddings: the NSFW detectors and the aesthetic predictors.

Each head is rebuilt here in the exact layout its authors published, so their weight file loads
as it is (`load_state_dict(strict=True)`), and reads the L2-normalized image embedding of the
CLIP model it was trained on:

    nsfw laion-l14      CLIP-based-NSFW-Detector's PyTorch port (its issue #7, NeMo Curator's):
                        norm.{mean,variance} -> linear_1 768->64 -> ReLU -> linear_2 ->512 -> ReLU
                        -> linear_3 ->256 -> ReLU -> linear_4 ->1 -> sigmoid; OpenAI ViT-L/14
    nsfw laion-b32      the same port of the B/32 model: norm -> linear_1 512->32 -> ReLU -> linear_2
                        ->32 -> ReLU -> dropout -> linear_3 ->1 -> sigmoid; OpenAI ViT-B/32
    nsfw laion-h14      h14_nsfw.pth: `layers` 1024->1024->2048->1024->256->128->16->1 with ReLU and
                        dropout between, no sigmoid (trained with MSE on 0/1); open_clip ViT-H-14
                        laion2b_s32b_b79k
    aesthetic laion-v2  improved-aesthetic-predictor's MLP: `layers` 768->1024->128->64->16->1,
                        dropouts between, no activations (sac+logos+ava1-l14-linearMSE.pth)
    aesthetic laion-v1-l14 / laion-v1-b32   aesthetic-predictor's one nn.Linear(768|512, 1)

Normalization divides by sqrt(variance) as the port does. `write_random_head` saves a seeded
random-init state_dict with the published keys and shapes (what tests load offline).
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np

NSFW = "nsfw"
AESTHETIC = "aesthetic"
OPENAI_L14 = ("ViT-L-14", "openai")
OPENAI_B32 = ("ViT-B-32", "openai")
LAION_H14 = ("ViT-H-14", "laion2b_s32b_b79k")
_NSFW_REPO = "https://github.com/LAION-AI/CLIP-based-NSFW-Detector"


@dataclass(frozen=True)
class HeadSpec:
    signal: str  # NSFW | AESTHETIC: the column it fills is `<signal>_score`
    name: str  # what --<signal>_model names
    layout: str  # which published architecture (a key of _BUILDERS)
    dim: int  # the width of the image embedding it reads
    clip: tuple[str, str]  # the open_clip (model, pretrained) it was trained on
    url: str | None  # the published weight file (None: no PyTorch file was published)
    member: str | None = None  # the state_dict's name inside a published .zip


HEADS = {spec.name: spec for spec in (
    HeadSpec(NSFW, "laion-l14", "nsfw_l14", 768, OPENAI_L14,
             f"{_NSFW_REPO}/files/10250461/clip_autokeras_binary_nsfw.zip", "clip_autokeras_binary_nsfw.pth"),
    HeadSpec(NSFW, "laion-b32", "nsfw_b32", 512, OPENAI_B32, None),
    HeadSpec(NSFW, "laion-h14", "nsfw_h14", 1024, LAION_H14, f"{_NSFW_REPO}/raw/main/h14_nsfw.pth"),
    HeadSpec(AESTHETIC, "laion-v2", "aesthetic_v2", 768, OPENAI_L14,
             "https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/"
             "sac+logos+ava1-l14-linearMSE.pth"),
    HeadSpec(AESTHETIC, "laion-v1-l14", "linear", 768, OPENAI_L14,
             "https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_l_14_linear.pth"),
    HeadSpec(AESTHETIC, "laion-v1-b32", "linear", 512, OPENAI_B32,
             "https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_b_32_linear.pth"),
)}


def heads_of(signal: str) -> dict[str, HeadSpec]:
    return {name: spec for name, spec in HEADS.items() if spec.signal == signal}


def _modules():
    import torch
    from torch import nn

    class Normalization(nn.Module):
        """Keras' Normalization layer as the PyTorch port keeps it: (x - mean) / sqrt(variance)."""

        def __init__(self, dim: int):
            super().__init__()
            self.register_buffer("mean", torch.zeros(dim))
            self.register_buffer("variance", torch.ones(dim))

        def forward(self, x):
            return (x - self.mean) / self.variance.sqrt()

    class NsfwL14(nn.Module):
        def __init__(self, dim: int):
            super().__init__()
            self.norm = Normalization(dim)
            self.linear_1, self.linear_2 = nn.Linear(dim, 64), nn.Linear(64, 512)
            self.linear_3, self.linear_4 = nn.Linear(512, 256), nn.Linear(256, 1)

        def forward(self, x):
            x = torch.relu(self.linear_1(self.norm(x)))
            x = torch.relu(self.linear_2(x))
            x = torch.relu(self.linear_3(x))
            return torch.sigmoid(self.linear_4(x))

    class NsfwB32(nn.Module):
        def __init__(self, dim: int):
            super().__init__()
            self.norm = Normalization(dim)
            self.linear_1, self.linear_2, self.linear_3 = nn.Linear(dim, 32), nn.Linear(32, 32), nn.Linear(32, 1)
            self.dropout = nn.Dropout(0.5)

        def forward(self, x):
            x = torch.relu(self.linear_1(self.norm(x)))
            x = self.dropout(torch.relu(self.linear_2(x)))
            return torch.sigmoid(self.linear_3(x))

    class Layers(nn.Module):
        """A published `self.layers = nn.Sequential(...)` model: its state_dict keys are `layers.<i>.*`."""

        def __init__(self, *layers):
            super().__init__()
            self.layers = nn.Sequential(*layers)

        def forward(self, x):
            return self.layers(x)

    def nsfw_h14(dim):
        widths = [dim, 1024, 2048, 1024, 256, 128]
        layers = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(0.2)]
        return Layers(*layers, nn.Linear(128, 16), nn.Linear(16, 1))

    def aesthetic_v2(dim):
        return Layers(nn.Linear(dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                      nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

    return {"nsfw_l14": NsfwL14, "nsfw_b32": NsfwB32, "nsfw_h14": nsfw_h14, "aesthetic_v2": aesthetic_v2,
            "linear": lambda dim: nn.Linear(dim, 1)}


def build_head(spec: HeadSpec):
    """The head's module in its published layout, random-init, in eval mode (dropout off)."""
    return _modules()[spec.layout](spec.dim).eval()


def read_state_dict(path: str, member: str | None = None) -> dict:
    """The state_dict in a published file: a torch.save'd dict, or (NSFW L/14) a .zip holding one."""
    import torch

    with open(path, "rb") as f:
        data = f.read()
    if zipfile.is_zipfile(io.BytesIO(data)) and member is not None:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == member]
            if names:  # a torch.save file is itself a zip: only a wrapper archive holds the member
                data = archive.read(names[0])
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def load_head(spec: HeadSpec, path: str):
    """The head with its published weights (strict: a file of another layout fails, naming the keys)."""
    head = build_head(spec)
    state = read_state_dict(path, spec.member)
    missing, unexpected = _key_mismatch(head.state_dict(), state)
    if missing or unexpected:
        raise ValueError(f"{path} is not a {spec.signal} {spec.name} state_dict (missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]})")
    head.load_state_dict(state)
    return head.eval()


def _key_mismatch(expected: dict, given: dict) -> tuple[list, list]:
    missing = sorted(k for k in expected if k not in given or tuple(given[k].shape) != tuple(expected[k].shape))
    return missing, sorted(k for k in given if k not in expected)


def apply_head(head, embeddings: np.ndarray, device: str = "cpu") -> np.ndarray:
    """float32 [n] head outputs on L2-normalized embeddings [n, dim]."""
    import torch

    x = torch.as_tensor(np.ascontiguousarray(embeddings, dtype=np.float32), device=device)
    with torch.inference_mode():
        return head(x).float().reshape(-1).cpu().numpy()


def write_random_head(spec: HeadSpec, path: str, seed: int = 0, dim: int | None = None) -> str:
    """A seeded random-init state_dict with the published keys and shapes (the variance kept > 0),
    saved with torch.save as its authors did. `dim` overrides the embedding width (small tests)."""
    import torch

    torch.manual_seed(seed)
    head = _modules()[spec.layout](dim or spec.dim)
    state = head.state_dict()
    if "norm.mean" in state:
        state["norm.mean"] = torch.randn_like(state["norm.mean"]) * 0.02
        state["norm.variance"] = torch.rand_like(state["norm.variance"]) * 0.01 + 1e-3
    torch.save(state, path)
    return path
