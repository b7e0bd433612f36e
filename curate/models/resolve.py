"""What `--clip_model/--clip_pretrained` (or `--dfn_...`) name, resolved before the run starts.

open_clip's own naming: a built-in config (`ViT-L-14`, `ViT-L-14-quickgelu`) with a pretrained
tag (`openai`, `dfn2b`), an `hf-hub:org/repo` or a checkpoint file; or a self-describing
`hf-hub:org/repo` / `local-dir:/path` model; or (ours) a model config JSON file for a user's own
architecture. The OpenAI, DFN and MetaCLIP weights were trained with QuickGELU while the plain
configs use GELU; open_clip 3.3 only warns on a mismatch and the scores quietly degrade. Here a
mismatch is corrected, never silently accepted: the spec switches to the config (or activation)
the weights need and carries a one-line note that the run prints and records.
"""
from __future__ import annotations

import json
import os
from curate.errors import UsageError
from curate.models.spec import EMBED, HF_HUB, LOCAL_DIR, TRANSFORMERS, ModelSpec  # noqa: F401  (re-exported)

QUICKGELU_SUFFIX = "-quickgelu"
HF_CONFIG = "open_clip_config.json"
REGISTERED: dict[str, dict] = {}  # configs from users' JSON files this process added to open_clip


def _open_clip():
    try:
        import open_clip
    except ImportError as e:  # the score extra is optional
        raise UsageError(f"scoring needs open_clip: pip install 'curate[score]' ({e})") from None
    return open_clip


def _flags(role: str) -> tuple[str, str]:
    return f"--{role}_model", f"--{role}_pretrained"


def _other_variant(name: str) -> str:
    return name[: -len(QUICKGELU_SUFFIX)] if name.endswith(QUICKGELU_SUFFIX) else name + QUICKGELU_SUFFIX


def _read_config_file(path: str, flag: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"{flag}: cannot read model config {path}: {e}") from None
    config = config.get("model_cfg", config)
    if not all(k in config for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise UsageError(f"{flag}: {path} is not an open_clip model config (needs embed_dim, vision_cfg, text_cfg)")
    return config


def _sibling_config(checkpoint: str) -> dict | None:
    """The open_clip_config.json of a downloaded hf-hub folder a checkpoint file sits in, if any."""
    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), HF_CONFIG)
    if "://" in checkpoint or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    return config.get("model_cfg", config)


def _file_exists(path: str) -> bool:
    if "://" in path:
        from apache_beam.io.filesystems import FileSystems  # gs://, s3:// checkpoints for remote workers
        return FileSystems.exists(path)
    return os.path.isfile(path)


def hf_config(repo: str, flag: str) -> dict:
    """The model config of an hf-hub repo (downloaded into the Hugging Face cache)."""
    from open_clip.factory import _get_hf_config

    from curate.models.hub import hub_mode

    with hub_mode() as offline:  # no network: the cache answers at once, not after a minute of retries
        try:
            config = _get_hf_config(repo)
        except Exception as e:  # noqa: BLE001 (network, missing repo, bad JSON: all one message)
            why = f"offline: {offline}; not in the cache" if offline else _first_line(e)
            raise UsageError(f"{flag}: cannot fetch {HF_HUB}{repo}/{HF_CONFIG} ({why})") from None
    return config.get("model_cfg", config)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def resolve(role: str, model: str, pretrained: str | None, task: str = EMBED) -> ModelSpec:
    """Check a model/pretrained pair and fix a QuickGELU mismatch; raises UsageError in one line.

    `task`: what a transformers checkpoint must be (EMBED: a CLIPModel; CAPTION: a captioner)."""
    from curate.models import hf_resolve

    if hf_resolve.is_transformers_model(model):  # a folder with config.json, or a bare org/repo hub id
        return hf_resolve.resolve_transformers(role, model, pretrained, task)
    open_clip = _open_clip()
    flag_model, flag_pretrained = _flags(role)
    pretrained = pretrained or None
    if model.startswith((HF_HUB, LOCAL_DIR)):
        if pretrained is not None:
            raise UsageError(f"{flag_pretrained}: not used with {model} (its weights come with it); drop the flag")
        if model.startswith(LOCAL_DIR) and not os.path.isfile(os.path.join(model[len(LOCAL_DIR):], HF_CONFIG)):
            raise UsageError(f"{flag_model}: {model} has no {HF_CONFIG}")
        return ModelSpec(role, model, None)  # the config travels with the weights: no mismatch possible

    config = None
    if model.endswith(".json"):
        config = _read_config_file(model, flag_model)
        name = os.path.splitext(os.path.basename(model))[0]
        if name in open_clip.list_models() and REGISTERED.get(name) != config:
            raise UsageError(f"{flag_model}: config file name {name!r} is taken by another open_clip model "
                             f"config; rename the file")
        model_cfg = config
    elif model in open_clip.list_models():
        name, model_cfg = model, open_clip.get_model_config(model)
    else:
        raise UsageError(f"{flag_model}: unknown open_clip model {model!r} (see open_clip.list_models(), "
                         f"or give hf-hub:org/repo, local-dir:/path or a model config .json)")
    if pretrained is None:
        tags = open_clip.list_pretrained_tags_by_model(name) if config is None else []
        raise UsageError(f"{flag_pretrained}: required with {flag_model} {model} (a tag such as "
                         f"{', '.join(tags[:4]) or 'openai'}, hf-hub:org/repo, or a checkpoint file)")
    return _match_activation(role, name, config, model_cfg, pretrained)


def _match_activation(role, name, config, model_cfg, pretrained) -> ModelSpec:
    open_clip = _open_clip()
    flag_model, flag_pretrained = _flags(role)
    from open_clip.pretrained import get_pretrained_cfg

    weights_cfg = None
    tag_cfg = get_pretrained_cfg(name, pretrained) if config is None else {}
    if tag_cfg:
        weights_quick = bool(tag_cfg.get("quick_gelu", False))
    elif config is None and get_pretrained_cfg(_other_variant(name), pretrained):
        # e.g. ViT-B-32-quickgelu + laion2b_s34b_b79k: the tag exists only for the GELU config
        weights_quick = bool(get_pretrained_cfg(_other_variant(name), pretrained).get("quick_gelu", False))
    elif pretrained.startswith(HF_HUB):
        weights_cfg = hf_config(pretrained[len(HF_HUB):], flag_pretrained)
        weights_quick = bool(weights_cfg.get("quick_gelu", False))
    elif _file_exists(pretrained):
        weights_cfg = _sibling_config(pretrained)
        weights_quick = None if weights_cfg is None else bool(weights_cfg.get("quick_gelu", False))
    else:
        tags = open_clip.list_pretrained_tags_by_model(name) if config is None else []
        known = f" (tags for {name}: {', '.join(tags)})" if tags else ""
        raise UsageError(f"{flag_pretrained}: {pretrained!r} is neither a pretrained tag of {name} nor an "
                         f"existing checkpoint file nor hf-hub:org/repo{known}")

    model_quick = bool(model_cfg.get("quick_gelu", False))
    if weights_quick is None or weights_quick == model_quick:
        return ModelSpec(role, name, pretrained, config)
    needs = "QuickGELU" if weights_quick else "GELU"
    variant = _other_variant(name)
    if config is None and variant in open_clip.list_models() and (
            weights_cfg is None or _same_architecture(weights_cfg, open_clip.get_model_config(variant))):
        note = (f"{flag_model} {name}: the {pretrained} weights were trained with {needs}; "
                f"using {variant} (pass it to silence this note)")
        return ModelSpec(role, variant, pretrained, None, None, note)
    note = (f"{flag_model} {name}: the {pretrained} weights were trained with {needs}; "
            f"building the model with quick_gelu={weights_quick}")
    return ModelSpec(role, name, pretrained, config, weights_quick, note)


def _same_architecture(a: dict, b: dict) -> bool:
    strip = lambda c: {k: v for k, v in c.items() if k != "quick_gelu"}  # noqa: E731
    return strip(a) == strip(b)


def fetch_weights(spec: ModelSpec) -> None:
    """Download (or find cached) the weights now, so a typo or no network fails before the run."""
    if spec.kind == TRANSFORMERS:
        from curate.models.hf_resolve import fetch_transformers
        fetch_transformers(spec)
        return
    _open_clip()
    from curate.models.hub import hub_mode

    flag_model, flag_pretrained = _flags(spec.role)
    with hub_mode() as offline:  # no network: fail (or use the cache) now, not after a minute of retries
        _fetch_open_clip(spec, flag_model, flag_pretrained, offline)


def _fetch_open_clip(spec: ModelSpec, flag_model: str, flag_pretrained: str, offline: str | None) -> None:
    from open_clip.pretrained import download_pretrained, download_pretrained_from_hf, get_pretrained_cfg

    try:
        if spec.name.startswith(HF_HUB):
            hf_config(spec.name[len(HF_HUB):], flag_model)
            download_pretrained_from_hf(spec.name[len(HF_HUB):])
        elif spec.name.startswith(LOCAL_DIR) or spec.pretrained is None:
            return
        elif get_pretrained_cfg(spec.name, spec.pretrained):
            download_pretrained(get_pretrained_cfg(spec.name, spec.pretrained))
        elif spec.pretrained.startswith(HF_HUB):
            download_pretrained_from_hf(spec.pretrained[len(HF_HUB):])
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001
        why = f"offline: {offline}; not in the cache" if offline else _first_line(e)
        raise UsageError(f"{flag_pretrained}: cannot fetch the weights of {spec.describe()} "
                         f"({why}); offline, pass a local checkpoint file") from None


def embed_dim(spec: ModelSpec) -> int | None:
    """The embedding width, when it is known without fetching anything."""
    if spec.kind == TRANSFORMERS:
        return None if spec.config is None else int(spec.config.get("projection_dim", 512))
    if spec.config is not None:
        return int(spec.config["embed_dim"])
    if spec.name.startswith((HF_HUB, LOCAL_DIR)):
        return None
    config = _open_clip().get_model_config(spec.name)
    return None if config is None else int(config["embed_dim"])
