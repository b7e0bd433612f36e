"""A tiny random-init open_clip ViT: how a user tries the scoring recipes offline.

`python -m curate.models.tiny FOLDER clip|dfn` writes one and prints the flags that load it
(README: the offline tour of dfn, datacomp and laion); the tests and the benchmarks' CPU smoke
runs use the same files, since no weights can be fetched offline. It is a model config .json
(what `--clip_model` accepts for a user's own architecture) and a checkpoint file (what
`--clip_pretrained` accepts), so it exercises the loading path real weights take.
"""
from __future__ import annotations

import json
import os

TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def write_tiny_model(folder: str, name: str = "tiny-vit", seed: int = 0, quick_gelu: bool = False,
                     config: dict | None = None) -> tuple[str, str]:
    """(config .json path, checkpoint path) of a seeded random-init model trained with `quick_gelu`.

    The checkpoint is written in a folder of its own beside an `open_clip_config.json` stating
    its activation, as a downloaded hf-hub repo would hold it.
    """
    import torch
    from open_clip.model import CLIP

    config = dict(config or TINY_CONFIG)
    os.makedirs(folder, exist_ok=True)
    config_path = os.path.join(folder, f"{name}.json")
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f)
    torch.manual_seed(seed)
    model = CLIP(**{**config, "quick_gelu": quick_gelu})
    weights = os.path.join(folder, f"{name}-weights")
    os.makedirs(weights, exist_ok=True)
    checkpoint = os.path.join(weights, "checkpoint.pt")
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    with open(os.path.join(weights, "open_clip_config.json"), "w", encoding="utf-8") as f:
        json.dump({"model_cfg": {**config, "quick_gelu": quick_gelu}}, f)
    return config_path, checkpoint


def main(argv: list[str] | None = None) -> int:
    """`python -m curate.models.tiny FOLDER clip|dfn`: write a tiny random-init model there (once)
    and print the flags that score with it, for an offline run without real weights."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m curate.models.tiny", description=main.__doc__)
    parser.add_argument("folder")
    parser.add_argument("role", choices=("clip", "dfn"), help="which score the model stands in for")
    args = parser.parse_args(argv)
    name = f"tiny-{args.role}"
    config, checkpoint = (os.path.join(args.folder, f"{name}.json"),
                          os.path.join(args.folder, f"{name}-weights", "checkpoint.pt"))
    if not (os.path.isfile(config) and os.path.isfile(checkpoint)):
        config, checkpoint = write_tiny_model(args.folder, name=name, seed=0)
    print(f"--{args.role}_model {config} --{args.role}_pretrained {checkpoint}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
