"""A Hugging Face `transformers` CLIPModel on one device (TinyCLIP's releases, any CLIPModel).

The same two halves as `curate.models.clip`, so the scoring handler treats both alike:
`HfClipInputs` (CPU threads) turns image bytes into the uint8 pixels the checkpoint's own
CLIPImageProcessor makes before rescaling (convert to RGB, shortest-edge resize, centre crop)
and captions into its tokenizer's ids; `HfClipModel` rescales, normalizes and embeds them
(`get_image_features` / `get_text_features`, L2-normalized), bf16 autocast on CUDA by default.
Scores equal CLIPProcessor followed by CLIPModel. The tokens of a caption are one [2, L] row
(input ids, attention mask) so that the handler can index them like open_clip's [L] rows.
"""
from __future__ import annotations

import threading

import numpy as np

from curate.models.clip import ClipModel, autocast_dtype, model_device
from curate.models.resolve import ModelSpec

_LOCK = threading.Lock()


def _import_transformers():
    import transformers  # resolve() already checked it is installed (one-line error otherwise)

    return transformers


def _load_kwargs(spec: ModelSpec) -> dict:
    return {"revision": spec.pretrained} if spec.pretrained else {}


def context_length(model) -> int:
    return int(model.config.text_config.max_position_embeddings)


class HfClipModel(ClipModel):
    """uint8 pixels + [n, 2, L] tokens -> L2-normalized float32 image and text embeddings.

    ClipModel's pixel normalization, batching and on-device decode; only loading and the two
    encoder calls differ.
    """

    def __init__(self, spec: ModelSpec, device: str = "auto", precision: str = "auto", threads: int = 0):
        import torch

        transformers = _import_transformers()
        self.spec = spec
        self.device = model_device(device, threads)
        self.dtype = autocast_dtype(self.device, precision)
        with _LOCK:  # from_pretrained is not safe to run twice at once in one process
            self.model = transformers.CLIPModel.from_pretrained(spec.name, torch_dtype=torch.float32,
                                                                **_load_kwargs(spec))
        self.model.to(self.device).eval()
        processor = transformers.CLIPImageProcessor.from_pretrained(spec.name, **_load_kwargs(spec))
        self.preprocess_cfg = {"mean": list(processor.image_mean), "std": list(processor.image_std),
                               "size": _crop_size(processor), "resize_mode": "shortest",
                               "interpolation": "bicubic" if processor.resample == 3 else "bilinear",
                               "context_length": context_length(self.model)}
        self._mean = torch.tensor(self.preprocess_cfg["mean"], device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.preprocess_cfg["std"], device=self.device).view(1, 3, 1, 1)
        self._gpu_inputs = HfClipInputs(spec, self.preprocess_cfg)  # what embed_encoded falls back on

    def embed_normalized(self, images, tokens) -> tuple[np.ndarray, np.ndarray]:
        import torch
        import torch.nn.functional as F

        tokens = torch.as_tensor(np.asarray(tokens)).to(self.device, non_blocking=True)
        with torch.inference_mode(), torch.autocast(self.device.split(":")[0], dtype=self.dtype,
                                                     enabled=self.dtype is not None):
            image = self.image_features(images)
            text = self.model.get_text_features(input_ids=tokens[:, 0], attention_mask=tokens[:, 1])
        image = F.normalize(image.float(), dim=-1)
        text = F.normalize(text.float(), dim=-1)
        return image.cpu().numpy(), text.cpu().numpy()


    def image_features(self, images):
        return self.model.get_image_features(pixel_values=images)


def _crop_size(processor) -> int:
    crop = processor.crop_size if processor.do_center_crop else processor.size
    if "height" in crop:
        if crop["height"] != crop["width"]:
            raise ValueError(f"non-square crop {crop} is not supported")
        return int(crop["height"])
    return int(crop["shortest_edge"])


class HfClipInputs:
    """CPU side: image bytes -> uint8 HWC pixels (the checkpoint's processor), captions -> [n, 2, L]."""

    def __init__(self, spec: ModelSpec, preprocess_cfg: dict):
        transformers = _import_transformers()
        self._processor = transformers.CLIPImageProcessor.from_pretrained(spec.name, **_load_kwargs(spec))
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(spec.name, **_load_kwargs(spec))
        self.size = preprocess_cfg["size"]
        self.resize_mode = preprocess_cfg.get("resize_mode", "shortest")
        self.interpolation = preprocess_cfg.get("interpolation", "bicubic")
        self.context_length = preprocess_cfg["context_length"]

    def pixels(self, data: bytes) -> np.ndarray:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return self.pixels_of(image)

    def pixels_of(self, image) -> np.ndarray:
        """A PIL image (decoded once for several models) -> uint8 HWC pixels."""
        out = self._processor(images=image, do_rescale=False, do_normalize=False, return_tensors="np",
                              data_format="channels_last")["pixel_values"][0]
        if out.ndim != 3 or out.shape[2] != 3:
            raise ValueError(f"unexpected pixel shape {out.shape}")
        return np.asarray(out, dtype=np.uint8)

    def tokens(self, captions: list[str]) -> np.ndarray:
        encoded = self._tokenizer(list(captions), padding="max_length", truncation=True,
                                  max_length=self.context_length, return_tensors="np")
        return np.stack([encoded["input_ids"], encoded["attention_mask"]], axis=1).astype(np.int64)


def write_tiny_hf_clip(folder: str, seed: int = 0, vision: dict | None = None, text: dict | None = None,
                       projection_dim: int = 32) -> str:
    """A seeded random-init CLIPModel saved with a CLIP tokenizer and image processor (offline).

    The tokenizer files are made from open_clip's bundled BPE vocabulary (the one OpenAI's CLIP
    and TinyCLIP use), so nothing is downloaded. Returns the folder (what --clip_model accepts).
    """
    import json
    import os

    import torch
    from open_clip.tokenizer import SimpleTokenizer

    transformers = _import_transformers()
    vision = {"image_size": 64, "patch_size": 16, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 2, **(vision or {})}
    text = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
            "max_position_embeddings": 32, "vocab_size": 49408, **(text or {})}
    config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)
    torch.manual_seed(seed)
    model = transformers.CLIPModel(config).eval()
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder)
    bpe = SimpleTokenizer()
    vocab, merges = os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
    with open(vocab, "w", encoding="utf-8") as f:
        # open_clip names the special tokens <start_of_text>/<end_of_text>; transformers' CLIP files
        # name the same ids <|startoftext|>/<|endoftext|>
        names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
        json.dump({names.get(k, k): v for k, v in bpe.encoder.items()}, f)
    with open(merges, "w", encoding="utf-8") as f:
        ranked = sorted(bpe.bpe_ranks.items(), key=lambda kv: kv[1])
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for (a, b), _ in ranked))
    transformers.CLIPTokenizer(vocab, merges).save_pretrained(folder)
    transformers.CLIPTokenizerFast.from_pretrained(folder).save_pretrained(folder)  # tokenizer.json: fast loads
    size = vision["image_size"]
    transformers.CLIPImageProcessor(size={"shortest_edge": size},
                                    crop_size={"height": size, "width": size}).save_pretrained(folder)
    return folder
