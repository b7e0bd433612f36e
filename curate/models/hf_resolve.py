"""What names a Hugging Face `transformers` checkpoint, checked before the run (one-line errors).

Beside open_clip's names (see resolve.py), a model flag may name a transformers checkpoint:
a local folder holding `config.json` (with its weights, tokenizer and image processor files), or
a hub id as transformers writes it, `org/repo` (e.g. `wkcn/TinyCLIP-ViT-8M-16-Text-3M-YFCC15M`,
`Qwen/Qwen2-VL-2B-Instruct`); with a hub id the pretrained flag may pin a git revision.
`hf-hub:org/repo` stays open_clip's (a repo with an open_clip_config.json). The activation comes
with the checkpoint's config, so there is no QuickGELU question here.

What the checkpoint must be depends on its task: scoring flags take a CLIPModel (model_type
`clip`); `--caption_model` takes a vision-language model that transformers' Auto classes load as
image-text-to-text (`AutoModelForImageTextToText`: BLIP, BLIP-2, GIT, LLaVA, LLaVA-NeXT,
Qwen2-VL, Qwen2.5-VL, PaliGemma, Idefics3, SmolVLM, ...). Its family (config `model_type`) also
picks the caption prompt a run uses when `--caption_prompt` is not given.
"""
from __future__ import annotations

import json
import os
import re

from curate.errors import UsageError
from curate.models.spec import CAPTION, EMBED, HF_HUB, LOCAL_DIR, TRANSFORMERS, ModelSpec

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER = ("tokenizer.json", "vocab.json", "tokenizer.model")
# config, tokenizer (json/txt, sentencepiece .model), processor, chat template (.jinja), weights
HUB_FILES = ["*.json", "*.txt", "*.model", "*.jinja", "*.safetensors", "*.bin"]
PROCESSOR = ("preprocessor_config.json", "processor_config.json")

# Families trained to caption an image with no prompt (the decoder starts from its start token), and
# families whose trained prompt is a task prefix; every other captioner is asked, through its chat
# template, for one descriptive caption.
IMAGE_TO_TEXT = ("blip", "blip-2", "git", "pix2struct", "vision-encoder-decoder")
TASK_PROMPTS = {"paligemma": "caption en"}
CHAT_PROMPT = "Write one descriptive caption for this image, in a single sentence."


def default_caption_prompt(model_type: str | None) -> str | None:
    """The prompt a captioner of this family gets without --caption_prompt (None: no prompt)."""
    if model_type in IMAGE_TO_TEXT:
        return None
    return TASK_PROMPTS.get(model_type, CHAT_PROMPT)


def _flags(role: str) -> tuple[str, str]:
    return f"--{role}_model", f"--{role}_pretrained"


def is_transformers_model(model: str) -> bool:
    if model.startswith((HF_HUB, LOCAL_DIR)) or model.endswith(".json"):
        return False
    return os.path.isdir(model) or (HUB_ID.match(model) is not None and not os.path.exists(model))


def _require_transformers(flag: str, model: str, task: str) -> None:
    try:
        import transformers  # noqa: F401
    except ImportError as e:
        what = "captioning with" if task == CAPTION else "scoring"
        raise UsageError(f"{flag}: {model} is a transformers checkpoint; {what} it needs transformers: "
                         f"pip install 'curate[hf]' ({e})") from None


def captioner_types() -> tuple[str, ...]:
    """The model types transformers' AutoModelForImageTextToText loads (the pinned version's list)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return tuple(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)


def check_clip_config(config: dict, flag: str, where: str) -> None:
    model_type = config.get("model_type")
    if model_type != "clip":
        raise UsageError(f"{flag}: {where} is a transformers {model_type or 'unknown'} model config, "
                         f"not a CLIPModel (model_type 'clip')")


def check_captioner_config(config: dict, flag: str, where: str) -> None:
    model_type = config.get("model_type")
    if model_type not in captioner_types():
        raise UsageError(f"{flag}: {where} is a transformers {model_type or 'unknown'} model config, not an "
                         f"image-to-text model (transformers' AutoModelForImageTextToText loads none of that type)")


def _check_folder(folder: str, flag: str, task: str = EMBED) -> dict:
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"{flag}: {folder} is a folder without a readable config.json "
                         f"(a transformers checkpoint folder has one): {e}") from None
    (check_captioner_config if task == CAPTION else check_clip_config)(config, flag, path)
    for what, names in (("weights", WEIGHTS), ("tokenizer", TOKENIZER), ("image processor", PROCESSOR)):
        if not any(os.path.isfile(os.path.join(folder, n)) for n in names):
            raise UsageError(f"{flag}: {folder} has no {what} file ({' or '.join(names)})")
    return config


def resolve_transformers(role: str, model: str, pretrained: str | None, task: str = EMBED) -> ModelSpec:
    flag_model, flag_pretrained = _flags(role)
    _require_transformers(flag_model, model, task)
    if os.path.isdir(model):
        if pretrained:
            raise UsageError(f"{flag_pretrained}: not used with the local folder {model} (its weights are in it); "
                             f"drop the flag")
        folder = os.path.abspath(model)
        return ModelSpec(role, folder, None, _check_folder(folder, flag_model, task), kind=TRANSFORMERS, task=task)
    # a hub id; pretrained: a revision
    return ModelSpec(role, model, pretrained or None, kind=TRANSFORMERS, task=task)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def fetch_transformers(spec: ModelSpec) -> dict:
    """Download a hub checkpoint into the Hugging Face cache now (workers load it from there);
    returns its checked config."""
    flag_model, _ = _flags(spec.role)
    if os.path.isdir(spec.name):
        return _check_folder(spec.name, flag_model, spec.task)
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(spec.name, revision=spec.pretrained, allow_patterns=HUB_FILES)
    except Exception as e:  # noqa: BLE001 (network, missing repo, offline: all one message)
        raise UsageError(f"{flag_model}: cannot fetch {spec.name} from the Hugging Face hub ({_first_line(e)}); "
                         f"offline, pass a local folder holding its config.json") from None
    return _check_folder(folder, flag_model, spec.task)
