"""Signal models on a GPU: each model's images/s beside the scoring model's, bf16 autocast,
random-init weights at the published sizes (see bench_signals_common), and the signals stage's
handler end to end (decode + text detection on CPU threads, overlapped with the models), both
embedding the images itself and reading the scoring stage's embeddings.

GPU:  python benchmarks/bench_signals_gpu.py --clip ViT-L-14 --batch_size 256 --images 1024
CPU smoke run of the same code (tiny CLIP, tiny classifier): python benchmarks/bench_signals_gpu.py --tiny
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from bench_signals_common import component_costs, handler_seconds, write_models  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="ViT-L-14")
    ap.add_argument("--tiny", action="store_true", help="smoke run on CPU with tiny models")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--batch_size", type=int, default=256)
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    if args.tiny:
        args.clip, args.device, args.precision, args.batch_size, args.images = "tiny", "cpu", "fp32", 4, 8
    with tempfile.TemporaryDirectory() as folder:
        files = write_models(folder, args.clip, "tiny" if args.tiny else "base")
        costs = component_costs(files, args.device, args.precision, args.images, args.batch_size)
        for reuse in (False, True):
            name = f"signals handler, all on, {'reused' if reuse else 'own'} CLIP"
            costs[name] = handler_seconds(files, args.device, args.precision, args.images, args.batch_size, reuse)
    result = {"clip": args.clip, "device": args.device, "precision": args.precision, "batch_size": args.batch_size,
              "images_per_s": {name: round(1 / s, 1) for name, s in costs.items()}}
    print(json.dumps(result, indent=1))
    base = costs["scoring model (image+caption)"]
    print(f"{'component':<44}{'images/s':>10}{'÷ scoring':>11}")
    for name, seconds in costs.items():
        print(f"{name:<44}{1 / seconds:>10.1f}{base / seconds:>11.3f}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
