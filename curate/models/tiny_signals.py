"""Random-init signal models in their published layouts: how a user tries the signals offline.

`python -m curate.models.tiny_signals FOLDER` writes (once) a tiny open_clip model whose
embeddings are 768-d like OpenAI's ViT-L/14 (what the laion-l14 NSFW head and the laion-v2
aesthetic predictor read), those two heads and LAION's watermark detector, each as the file its
authors published, and prints the flags that load them. Their values are noise; the code path is
the one real weights take. Tests and the benchmarks' CPU runs use the same writers.
"""
from __future__ import annotations

import os

from curate.models.tiny import TINY_CONFIG

TINY_L14_CONFIG = {**TINY_CONFIG, "embed_dim": 768}  # ViT-L/14's embedding width, tiny towers


def write_tiny_signals(folder: str, seed: int = 0) -> dict[str, str]:
    """The files (flag -> path) of a tiny 768-d CLIP, the laion-l14 and laion-v2 heads and the watermark model."""
    from curate.models.heads import HEADS, write_random_head
    from curate.models.tiny import write_tiny_model
    from curate.models.watermark import write_random_watermark_model

    os.makedirs(folder, exist_ok=True)
    config, checkpoint = write_tiny_model(folder, name="tiny-l14", seed=seed, config=TINY_L14_CONFIG)
    return {"--signal_clip_model": config, "--signal_clip_pretrained": checkpoint,
            "--nsfw_weights": write_random_head(HEADS["laion-l14"], os.path.join(folder, "nsfw-l14.pth"), seed),
            "--aesthetic_weights": write_random_head(HEADS["laion-v2"], os.path.join(folder, "aesthetic-v2.pth"),
                                                     seed),
            "--watermark_weights": write_random_watermark_model(os.path.join(folder, "watermark.pt"), seed)}


def main(argv: list[str] | None = None) -> int:
    """`python -m curate.models.tiny_signals FOLDER`: write tiny signal models there (once) and print
    the flags that compute every signal with them."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m curate.models.tiny_signals", description=main.__doc__)
    parser.add_argument("folder")
    args = parser.parse_args(argv)
    marker = os.path.join(args.folder, "watermark.pt")
    files = write_tiny_signals(args.folder) if not os.path.isfile(marker) else {
        "--signal_clip_model": os.path.join(args.folder, "tiny-l14.json"),
        "--signal_clip_pretrained": os.path.join(args.folder, "tiny-l14-weights", "checkpoint.pt"),
        "--nsfw_weights": os.path.join(args.folder, "nsfw-l14.pth"),
        "--aesthetic_weights": os.path.join(args.folder, "aesthetic-v2.pth"), "--watermark_weights": marker}
    flags = ["--nsfw_model laion-l14", "--aesthetic_model laion-v2", "--watermark_model laion",
             "--text_detector default", *(f"{flag} {path}" for flag, path in files.items())]
    print(" ".join(flags))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
