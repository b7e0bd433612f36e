"""Scoring stage inside the Beam graph ÷ bare open_clip, same images, model and batch size (CPU).

Bare open_clip is the loop a user writes without Beam: open_clip's validation transform on each
PIL image, its tokenizer, encode_image/encode_text, normalize, cosine; batches of --batch_size.
The in-graph figure is the marginal rate of `ScoreWith` (RunInference + our ModelHandler) on
FnApiRunner, see bench_score_common.beam_rate. Also reported: the model alone on pre-decoded pixels.

Run: python benchmarks/bench_score_cpu.py --model ViT-S-32 --batch_size 64 --images 128 384
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_score_common import beam_rate, cpu_seconds, random_model, samples  # noqa: E402

from curate.score.handler import InferenceSettings  # noqa: E402


def bare_rates(spec, n: int, batch_size: int) -> tuple[float, float, float]:
    """(end-to-end images/s, model-only images/s, CPU ms per image) of plain open_clip."""
    import torch
    from PIL import Image

    from curate.models.clip import create_model
    import open_clip

    model, preprocess = create_model(spec, "cpu")
    tokenizer = open_clip.get_tokenizer(spec.name)
    items = samples(n)
    with torch.inference_mode():  # warm-up: the first forward of a shape sets up kernels
        model.encode_image(torch.stack([preprocess(Image.open(io.BytesIO(s.image))) for s in items[:batch_size]]))
        model.encode_text(tokenizer([s.caption for s in items[:batch_size]]))
    forward = 0.0
    t0, c0 = time.perf_counter(), cpu_seconds()
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            chunk = items[i:i + batch_size]
            pixels = torch.stack([preprocess(Image.open(io.BytesIO(s.image))) for s in chunk])
            tokens = tokenizer([s.caption for s in chunk])
            f0 = time.perf_counter()
            image = torch.nn.functional.normalize(model.encode_image(pixels), dim=-1)
            text = torch.nn.functional.normalize(model.encode_text(tokens), dim=-1)
            (image * text).sum(-1).numpy()
            forward += time.perf_counter() - f0
    total, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return n / total, n / forward, 1000 * cpu / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="ViT-S-32", help="open_clip config (random init) or 'tiny'")
    ap.add_argument("--torch_threads", type=int, default=1,
                    help="torch threads in both (1: steady on a shared machine; decode threads are extra)")
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--images", type=int, nargs=2, default=[128, 384], metavar=("SMALL", "LARGE"))
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    small, large = args.images
    import torch

    torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory() as tmp:
        spec = random_model(args.model, tmp)
        inference = InferenceSettings(device="cpu", precision="fp32", batch_size=args.batch_size, rows_per_batch=args.batch_size,
                          torch_threads=args.torch_threads)
        rows = []
        for _ in range(args.repeats):  # interleaved, so load changes on the machine hit both
            bare, model_only, bare_cpu = bare_rates(spec, large - small, args.batch_size)
            graph, graph_cpu = beam_rate(spec, inference, small, large)
            rows.append((graph, bare, model_only, graph_cpu, bare_cpu))
    print(f"model {args.model} (random init), batch {args.batch_size}, {large - small} images marginal, "
          f"torch threads {args.torch_threads}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'in graph/s':>11}{'bare e2e/s':>12}{'model only/s':>14}{'graph÷bare':>12}{'graph÷model':>13}"
          f"{'graph CPU ms/img':>18}{'bare CPU ms/img':>17}")
    for graph, bare, model_only, graph_cpu, bare_cpu in rows:
        print(f"{graph:>11.1f}{bare:>12.1f}{model_only:>14.1f}{graph / bare:>12.2f}{graph / model_only:>13.2f}"
              f"{graph_cpu:>18.1f}{bare_cpu:>17.1f}")
    table = np.array(rows)
    print(f"median of per-repeat ratios, in graph ÷ bare open_clip: {np.median(table[:, 0] / table[:, 1]):.2f}; "
          f"÷ model alone: {np.median(table[:, 0] / table[:, 2]):.2f}; "
          f"CPU per image, bare ÷ graph: {np.median(table[:, 4] / table[:, 3]):.2f}")


if __name__ == "__main__":
    main()
