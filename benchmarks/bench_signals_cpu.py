"""Per-image CPU cost of each image signal beside the scoring model's, in one process.

Every model at its published size, random-init (see bench_signals_common): the scoring model
(open_clip --clip, image + caption), the signal CLIP (image tower only: what the heads need when
the run does not score with their model), LAION's heads on the embeddings, the watermark detector
(timm efficientnet_b3a, 256x256), a transformers ViT-B/16 classifier (Falconsai's NSFW model's
shape), the PP-OCRv4 text detector, T-MARS's extra inputs; then the signals stage's handler with
every signal on, embedding the images itself or reading the scoring stage's embeddings.
Ratios are against the scoring model's forward pass per image, same process, same threads.

Run: python benchmarks/bench_signals_cpu.py --clip ViT-L-14 --images 16 --batch_size 8
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from bench_signals_common import component_costs, handler_seconds, write_models  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="ViT-L-14", help="open_clip config of the scoring model (random init) or tiny")
    ap.add_argument("--torch_threads", type=int, default=1)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch_size", type=int, default=8)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory() as folder:
        files = write_models(folder, args.clip, "base" if args.clip != "tiny" else "tiny")
        costs = component_costs(files, "cpu", "fp32", args.images, args.batch_size)
        costs["signals handler, all on, own CLIP"] = handler_seconds(files, "cpu", "fp32", args.images,
                                                                     args.batch_size, reuse=False)
        costs["signals handler, all on, reused CLIP"] = handler_seconds(files, "cpu", "fp32", args.images,
                                                                        args.batch_size, reuse=True)
    base = costs["scoring model (image+caption)"]
    print(f"scoring model {args.clip} (random init), {args.images} images (~640x480), batch {args.batch_size}, "
          f"torch threads {args.torch_threads}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'component':<44}{'ms/image':>10}{'÷ scoring':>11}")
    for name, seconds in costs.items():
        print(f"{name:<44}{1000 * seconds:>10.2f}{seconds / base:>11.3f}")


if __name__ == "__main__":
    main()
