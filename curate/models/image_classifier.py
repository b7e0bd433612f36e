"""Any Hugging Face `transformers` image-classification checkpoint as a signal: the probability of
one of its classes (`--nsfw_model Falconsai/nsfw_image_detection --nsfw_label nsfw`).

A checkpoint is a hub id (`org/repo`) or a local folder with its `config.json`; the label must be
one of its `id2label` names (checked before the run: a folder at once, a hub checkpoint when
prepare fetches it). The CPU half (`ClassifierInputs`: the checkpoint's own AutoImageProcessor on
the RGB image) runs on the decode threads; `ImageClassifier` runs the model and takes the
softmax, as `pipeline("image-classification")` does.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass

import numpy as np

from curate.errors import UsageError

_LOCK = threading.Lock()
HUB_FILES = ["*.json", "*.safetensors", "*.bin", "*.txt"]


@dataclass(frozen=True)
class ClassifierSpec:
    name: str  # hub id, or an absolute folder
    label: str  # the class whose probability is the signal
    flag: str  # --nsfw_model / --watermark_model: for messages


def _transformers(flag: str, model: str):
    try:
        import transformers
    except ImportError as e:
        raise UsageError(f"{flag}: {model} is a transformers checkpoint; it needs transformers: "
                         f"pip install 'curate[hf]' ({e})") from None
    return transformers


def _read_config(folder: str, flag: str) -> dict:
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"{flag}: {folder} has no readable config.json (a transformers checkpoint has one): "
                         f"{e}") from None


def label_index(id2label: dict, label: str, flag: str, where: str) -> int:
    """The class id of `label` (exact name, else the one name equal ignoring case)."""
    names = {int(k): v for k, v in id2label.items()}
    exact = [i for i, v in names.items() if v == label]
    folded = [i for i, v in names.items() if str(v).lower() == label.lower()]
    found = exact or (folded if len(folded) == 1 else [])
    if not found:
        raise UsageError(f"{flag}: {where} has no class {label!r} (its classes: "
                         f"{', '.join(str(names[i]) for i in sorted(names))})")
    return found[0]


def resolve_classifier(model: str, label: str, flag: str, label_flag: str) -> ClassifierSpec:
    """Check a checkpoint name (and, for a local folder, the label) before the run."""
    _transformers(flag, model)
    if os.path.isdir(model):
        folder = os.path.abspath(model)
        label_index(_read_config(folder, flag).get("id2label", {}), label, label_flag, folder)
        return ClassifierSpec(folder, label, flag)
    return ClassifierSpec(model, label, flag)


def fetch_classifier(spec: ClassifierSpec, label_flag: str) -> None:
    """Download a hub checkpoint now (workers then load it from the cache) and check its label."""
    if os.path.isdir(spec.name):
        return
    from huggingface_hub import snapshot_download

    from curate.models.hub import hub_mode

    with hub_mode() as offline:
        try:
            folder = snapshot_download(spec.name, allow_patterns=HUB_FILES)
        except Exception as e:  # noqa: BLE001 (network, missing repo, offline: one message)
            why = f"offline: {offline}; not in the cache" if offline else (str(e).splitlines() or [""])[0][:200]
            raise UsageError(f"{spec.flag}: cannot fetch {spec.name} from the Hugging Face hub ({why}); offline, "
                             f"pass a local folder holding its config.json") from None
    label_index(_read_config(folder, spec.flag).get("id2label", {}), spec.label, label_flag, spec.name)


class ClassifierInputs:
    """CPU side: a PIL image -> the checkpoint's float32 pixel_values [C, H, W]."""

    def __init__(self, spec: ClassifierSpec):
        transformers = _transformers(spec.flag, spec.name)
        with _LOCK:
            self.processor = transformers.AutoImageProcessor.from_pretrained(spec.name)

    def pixels(self, image) -> np.ndarray:
        return np.asarray(self.processor(images=image.convert("RGB"), return_tensors="np")["pixel_values"][0],
                          dtype=np.float32)


class ImageClassifier:
    """float32 pixel_values [n, C, H, W] -> float32 [n] probability of the spec's label."""

    def __init__(self, spec: ClassifierSpec, device: str, dtype=None):
        import torch

        transformers = _transformers(spec.flag, spec.name)
        with _LOCK:  # from_pretrained is not safe to run twice at once in one process
            self.model = transformers.AutoModelForImageClassification.from_pretrained(
                spec.name, torch_dtype=torch.float32)
        self.model.to(device).eval()
        self.device = device
        self.dtype = dtype
        self.index = label_index(self.model.config.id2label, spec.label, spec.flag, spec.name)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        x = torch.as_tensor(pixels).to(self.device)
        with torch.inference_mode(), torch.autocast(self.device.split(":")[0], dtype=self.dtype,
                                                     enabled=self.dtype is not None):
            logits = self.model(pixel_values=x).logits
        return torch.softmax(logits.float(), dim=-1)[:, self.index].cpu().numpy()


def write_tiny_image_classifier(folder: str, labels: tuple[str, ...] = ("normal", "nsfw"), seed: int = 0,
                                image_size: int = 32) -> str:
    """A seeded random-init ViTForImageClassification with a ViTImageProcessor (mean = std = 0.5, as
    Falconsai/nsfw_image_detection), saved as a checkpoint folder (what tests load offline)."""
    import torch
    import transformers

    config = transformers.ViTConfig(image_size=image_size, patch_size=8, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=64,
                                    id2label=dict(enumerate(labels)), label2id={v: i for i, v in enumerate(labels)})
    torch.manual_seed(seed)
    transformers.ViTForImageClassification(config).eval().save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": image_size, "width": image_size}, image_mean=[0.5] * 3,
                                   image_std=[0.5] * 3).save_pretrained(folder)
    return folder
