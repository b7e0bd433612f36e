"""Caption stage with a transformers captioner inside the Beam graph ÷ bare transformers `generate`,
same images, model, batch, generation (CPU).

Bare: PIL decode, the checkpoint's processor on the batch (chat-templated prompt, left padding),
`model.generate` (transformers' own sampling on its global RNG), new tokens decoded to text. In
graph: the marginal rate of `Caption` (RunInference + VlmHandler: decode and processor on CPU
threads beside the model, each caption drawn from its own seeded generator) on FnApiRunner, from
two runs of different sizes. Every caption is --length new tokens (min = max), so both sides
decode the same number of steps whatever the random weights emit. Target: ratio >= 0.85.
Two ratios: per wall second (what a user sees; noisy on a shared machine) and per CPU second of
the process (the work each side does, whatever else the machine runs).

Run: python benchmarks/bench_caption_vlm_cpu.py --models blip qwen2_vl --batch_size 8 --images 16 48
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_caption_common import graph_rates, vlm_bare_rate, vlm_spec  # noqa: E402

from curate.caption.settings import CaptionSettings  # noqa: E402
from curate.models.generation import GenerationParams  # noqa: E402
from curate.score.run_settings import RunSettings  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["blip", "qwen2_vl"],
                    help="tiny_vlm families (random init) or checkpoint folders")
    ap.add_argument("--size", default="tiny", help="tiny | full (the released checkpoint's dimensions)")
    ap.add_argument("--generation", default="top_p", help="top_p | top_k | greedy | beam_search")
    ap.add_argument("--length", type=int, default=16, help="new tokens per caption (every caption full length)")
    ap.add_argument("--captions_per_image", type=int, default=1)
    ap.add_argument("--torch_threads", type=int, default=1, help="torch threads in both (1: steady on a shared box)")
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--images", type=int, nargs=2, default=[16, 48], metavar=("SMALL", "LARGE"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.torch_threads)
    small, large = args.images
    params = GenerationParams(args.generation, seq_len=args.length, min_seq_len=args.length, num_beams=3,
                              num_beam_groups=1)
    run = RunSettings(device="cpu", precision="fp32", batch_size=args.batch_size, rows_per_batch=args.batch_size,
                      decode_threads=1, torch_threads=args.torch_threads)
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            spec = vlm_spec(model, tmp, args.size)
            settings = CaptionSettings(spec, params, run, captions_per_image=args.captions_per_image)
            rows = []
            for _ in range(args.repeats):  # interleaved, so load changes on the machine hit both
                bare, bare_cpu = vlm_bare_rate(spec, settings, large - small, cpu=True)
                graph, graph_cpu = graph_rates(settings, small, large)
                rows.append((graph, bare, graph_cpu, bare_cpu))
            print(f"{model} {args.size} (random init), {args.generation}, {args.length} new tokens, "
                  f"{args.captions_per_image} caption(s)/image, batch {args.batch_size}, {large - small} images "
                  f"marginal, torch threads {args.torch_threads}, load average {os.getloadavg()[0]:.1f}")
            print(f"{'in graph captions/s':>20}{'bare generate/s':>17}{'graph÷bare':>12}"
                  f"{'graph /CPU s':>14}{'bare /CPU s':>13}{'graph÷bare':>12}")
            for graph, bare, graph_cpu, bare_cpu in rows:
                print(f"{graph:>20.2f}{bare:>17.2f}{graph / bare:>12.2f}{graph_cpu:>14.2f}{bare_cpu:>13.2f}"
                      f"{graph_cpu / bare_cpu:>12.2f}")
            table = np.array(rows)
            print(f"median of per-repeat ratios, in graph ÷ bare model.generate: wall "
                  f"{np.median(table[:, 0] / table[:, 1]):.2f}, CPU {np.median(table[:, 2] / table[:, 3]):.2f}\n",
                  flush=True)


if __name__ == "__main__":
    main()
