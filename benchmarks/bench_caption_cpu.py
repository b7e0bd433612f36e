"""Caption stage inside the Beam graph ÷ the bare `generate` loop a user writes, same images, model,
batch and generation (CPU): open_clip CoCa (--model) and transformers vision-language models (--vlms).

Bare CoCa: open_clip's validation transform on each PIL image, `model.generate` on the batch (its
global-RNG sampling), tokens decoded to text. Bare VLM: PIL decode, the checkpoint's processor on
the batch (chat-templated prompt, left padding), transformers' `model.generate` (its own
global-RNG sampling), the new tokens decoded to text. In graph: the marginal rate of `Caption`
(RunInference + CocaHandler / VlmHandler: decode, and a VLM's processor, on CPU threads beside the
model; each sampled caption drawn from its own seeded generator) on FnApiRunner, from two runs of
different sizes. Every caption is full length (CoCa: min length = --length - 1; a VLM: --length
new tokens, min = max), so both sides decode the same number of steps whatever the random weights
emit. Targets: CoCa >= 0.8, VLMs >= 0.85. Two ratios: per wall second (what a user sees; noisy on a
shared machine) and per CPU second of the process (the work each side does, whatever else runs).

Run: python benchmarks/bench_caption_cpu.py --model small --batch_size 16 --images 16 48
     python benchmarks/bench_caption_cpu.py --model none --vlms blip qwen2_vl --batch_size 8 --images 16 112 --repeats 5
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_caption_common import bare_rate, graph_rates, random_coca, vlm_bare_rate, vlm_spec  # noqa: E402

from curate.caption.settings import CaptionSettings  # noqa: E402
from curate.models.generation import GenerationParams  # noqa: E402
from curate.score.inference import InferenceSettings  # noqa: E402


def _report(title: str, rows: list) -> None:
    print(title)
    print(f"{'in graph captions/s':>20}{'bare generate/s':>17}{'graph÷bare':>12}"
          f"{'graph /CPU s':>14}{'bare /CPU s':>13}{'graph÷bare':>12}")
    for graph, bare, graph_cpu, bare_cpu in rows:
        print(f"{graph:>20.2f}{bare:>17.2f}{graph / bare:>12.2f}{graph_cpu:>14.2f}{bare_cpu:>13.2f}"
              f"{graph_cpu / bare_cpu:>12.2f}")
    table = np.array(rows)
    print(f"median of per-repeat ratios, in graph ÷ bare model.generate: wall "
          f"{np.median(table[:, 0] / table[:, 1]):.2f}, CPU {np.median(table[:, 2] / table[:, 3]):.2f}\n", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="small", help="CoCa: tiny | small | an open_clip CoCa config (random init) | none")
    ap.add_argument("--vlms", nargs="*", default=[],
                    help="transformers captioners: curate.models.tiny_vlm families (blip, qwen2_vl, llava; random "
                         "init) or checkpoint folders")
    ap.add_argument("--vlm_size", default="tiny", help="tiny_vlm size of --vlms families: tiny | full")
    ap.add_argument("--generation", default="top_p", help="top_p | top_k | beam_search (| greedy: VLMs)")
    ap.add_argument("--length", type=int, default=16, help="tokens per caption (every caption full length)")
    ap.add_argument("--captions_per_image", type=int, default=1)
    ap.add_argument("--torch_threads", type=int, default=1, help="torch threads in both (1: steady on a shared box)")
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--images", type=int, nargs=2, default=[16, 48], metavar=("SMALL", "LARGE"))
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.torch_threads)
    small, large = args.images
    inference = InferenceSettings(device="cpu", precision="fp32", batch_size=args.batch_size, rows_per_batch=args.batch_size,
                      decode_threads=1, torch_threads=args.torch_threads)
    common = (f"{args.generation}, batch {args.batch_size}, {args.captions_per_image} caption(s)/image, "
              f"{large - small} images marginal, torch threads {args.torch_threads}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.model != "none":
            spec = random_coca(args.model, tmp)
            params = GenerationParams(args.generation, seq_len=args.length, min_seq_len=args.length - 1,
                                      num_beams=3, num_beam_groups=1)
            settings = CaptionSettings(spec, params, inference, captions_per_image=args.captions_per_image)
            rows = []
            for _ in range(args.repeats):  # interleaved, so load changes on the machine hit both
                bare, bare_cpu = bare_rate(spec, settings, large - small, cpu=True)
                graph, graph_cpu = graph_rates(settings, small, large)
                rows.append((graph, bare, graph_cpu, bare_cpu))
            _report(f"CoCa {args.model} (random init), {args.length} tokens, {common}, "
                    f"load average {os.getloadavg()[0]:.1f}", rows)
        for model in args.vlms:
            spec = vlm_spec(model, tmp, args.vlm_size)
            params = GenerationParams(args.generation, seq_len=args.length, min_seq_len=args.length, num_beams=3,
                                      num_beam_groups=1)
            settings = CaptionSettings(spec, params, inference, captions_per_image=args.captions_per_image)
            rows = []
            for _ in range(args.repeats):
                bare, bare_cpu = vlm_bare_rate(spec, settings, large - small, cpu=True)
                graph, graph_cpu = graph_rates(settings, small, large)
                rows.append((graph, bare, graph_cpu, bare_cpu))
            _report(f"{model} {args.vlm_size} (random init), {args.length} new tokens, {common}, "
                    f"load average {os.getloadavg()[0]:.1f}", rows)


if __name__ == "__main__":
    main()
