"""What names a Hugging Face `transformers` CLIPModel, checked before the run (one-line errors).

Beside open_clip's names (see resolve.py), a model flag may name a transformers checkpoint:
a local folder holding `config.json` (a CLIPModel, with its tokenizer and image processor
files), or a hub id as transformers writes it, `org/repo` (e.g.
`wkcn/TinyCLIP-ViT-8M-16-Text-3M-YFCC15M`); with a hub id the pretrained flag may pin a git
revision. `hf-hub:org/repo` stays open_clip's (a repo with an open_clip_config.json). The
activation comes with the checkpoint's config, so there is no QuickGELU question here.
"""
from __future__ import annotations

import json
import os
import re

from curate.errors import UsageError
from curate.models.spec import HF_HUB, LOCAL_DIR, TRANSFORMERS, ModelSpec

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER = ("tokenizer.json", "vocab.json")
HUB_FILES = ["*.json", "*.txt", "*.safetensors", "*.bin"]  # config, tokenizer, processor, weights


def _flags(role: str) -> tuple[str, str]:
    return f"--{role}_model", f"--{role}_pretrained"


def is_transformers_model(model: str) -> bool:
    if model.startswith((HF_HUB, LOCAL_DIR)) or model.endswith(".json"):
        return False
    return os.path.isdir(model) or (HUB_ID.match(model) is not None and not os.path.exists(model))


def _require_transformers(flag: str, model: str) -> None:
    try:
        import transformers  # noqa: F401
    except ImportError as e:
        raise UsageError(f"{flag}: {model} is a transformers CLIPModel; scoring it needs transformers: "
                         f"pip install 'curate[hf]' ({e})") from None


def check_clip_config(config: dict, flag: str, where: str) -> None:
    model_type = config.get("model_type")
    if model_type != "clip":
        raise UsageError(f"{flag}: {where} is a transformers {model_type or 'unknown'} model config, "
                         f"not a CLIPModel (model_type 'clip')")


def _check_folder(folder: str, flag: str) -> dict:
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"{flag}: {folder} is a folder without a readable config.json "
                         f"(a transformers CLIPModel folder has one): {e}") from None
    check_clip_config(config, flag, path)
    for what, names in (("weights", WEIGHTS), ("tokenizer", TOKENIZER),
                        ("image processor", ("preprocessor_config.json",))):
        if not any(os.path.isfile(os.path.join(folder, n)) for n in names):
            raise UsageError(f"{flag}: {folder} has no {what} file ({' or '.join(names)})")
    return config


def resolve_transformers(role: str, model: str, pretrained: str | None) -> ModelSpec:
    flag_model, flag_pretrained = _flags(role)
    _require_transformers(flag_model, model)
    if os.path.isdir(model):
        if pretrained:
            raise UsageError(f"{flag_pretrained}: not used with the local folder {model} (its weights are in it); "
                             f"drop the flag")
        folder = os.path.abspath(model)
        return ModelSpec(role, folder, None, _check_folder(folder, flag_model), kind=TRANSFORMERS)
    return ModelSpec(role, model, pretrained or None, kind=TRANSFORMERS)  # a hub id; pretrained: a revision


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def fetch_transformers(spec: ModelSpec) -> None:
    """Download a hub checkpoint into the Hugging Face cache now (workers load it from there)."""
    if os.path.isdir(spec.name):
        return
    flag_model, _ = _flags(spec.role)
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(spec.name, revision=spec.pretrained, allow_patterns=HUB_FILES)
    except Exception as e:  # noqa: BLE001 (network, missing repo, offline: all one message)
        raise UsageError(f"{flag_model}: cannot fetch {spec.name} from the Hugging Face hub ({_first_line(e)}); "
                         f"offline, pass a local folder holding its config.json") from None
    _check_folder(folder, flag_model)
