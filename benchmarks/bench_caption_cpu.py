"""Caption stage inside the Beam graph ÷ bare open_clip `model.generate`, same images, model, batch (CPU).

Bare: open_clip's validation transform on each PIL image, `model.generate` on the batch (its
global-RNG sampling), tokens decoded to text. In graph: the marginal rate of `Caption`
(RunInference + CocaHandler: decode on CPU threads overlapped with the model, per-sample seeded
sampling) on FnApiRunner, from two runs of different sizes. Target: ratio >= 0.8.

Run: python benchmarks/bench_caption_cpu.py --model small --batch_size 16 --images 16 48
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_caption_common import bare_rate, graph_rate, random_coca  # noqa: E402

from curate.caption.settings import CaptionSettings  # noqa: E402
from curate.models.coca import GenerationParams  # noqa: E402
from curate.score.run_settings import RunSettings  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="small", help="tiny | small | an open_clip CoCa config (random init)")
    ap.add_argument("--generation", default="top_p", help="top_p | top_k | beam_search")
    ap.add_argument("--length", type=int, default=16, help="tokens per caption (every caption full length)")
    ap.add_argument("--torch_threads", type=int, default=1, help="torch threads in both (1: steady on a shared box)")
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--images", type=int, nargs=2, default=[16, 48], metavar=("SMALL", "LARGE"))
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.torch_threads)
    small, large = args.images
    params = GenerationParams(args.generation, seq_len=args.length, min_seq_len=args.length - 1,
                              num_beams=3, num_beam_groups=1)
    run = RunSettings(device="cpu", precision="fp32", batch_size=args.batch_size, rows_per_batch=args.batch_size,
                      decode_threads=1, torch_threads=args.torch_threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = random_coca(args.model, tmp)
        settings = CaptionSettings(spec, params, run)
        for _ in range(args.repeats):  # interleaved, so load changes on the machine hit both
            bare = bare_rate(spec, settings, large - small)
            graph = graph_rate(settings, small, large)
            rows.append((graph, bare))
    print(f"CoCa {args.model} (random init), {args.generation}, {args.length} tokens, batch {args.batch_size}, "
          f"{large - small} images marginal, torch threads {args.torch_threads}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'in graph captions/s':>20}{'bare generate/s':>17}{'graph÷bare':>12}")
    for graph, bare in rows:
        print(f"{graph:>20.2f}{bare:>17.2f}{graph / bare:>12.2f}")
    table = np.array(rows)
    print(f"median of per-repeat ratios, in graph ÷ bare model.generate: {np.median(table[:, 0] / table[:, 1]):.2f}")


if __name__ == "__main__":
    main()
