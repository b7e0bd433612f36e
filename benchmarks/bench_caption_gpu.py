"""Caption throughput on a GPU: CoCa ViT-L/14 (and ViT-B/32, bf16 autocast) and transformers
vision-language models (bf16 weights), random-init weights.

For each model and generation type, captions/s on one GPU of:
  bare generate   the loop a user writes: PIL preprocess (CoCa: open_clip's transform; a VLM: its
                  processor with the chat-templated prompt, left padding) on the main thread,
                  model.generate on the batch, ids decoded to text (decode included, not overlapped)
  handler e2e     our handler's run_inference on SampleBatches (CocaHandler / VlmHandler): JPEG
                  decode (and the VLM's processor) on --decode_threads CPU threads overlapped with
                  generate (what a worker does, no Beam)
  graph           the Caption stage inside a FnApiRunner pipeline (marginal rate of two runs)
Every caption is --length tokens long (CoCa: min length = max length - 1; a VLM: min new tokens =
max new tokens), so random weights decode as many steps as real ones at that length. Images: the
bundled COCO JPEGs (~640x480) repeated. VLMs (--vlms) are curate.models.tiny_vlm families at
--vlm_size full (the released checkpoints' dimensions: qwen2_vl = Qwen2-VL-2B-Instruct, llava =
LLaVA-1.5-7B, blip = BLIP base; nothing downloaded), or checkpoint folders.

GPU:  python benchmarks/bench_caption_gpu.py --models coca_ViT-L-14 coca_ViT-B-32 --batch_size 128 --images 1024
      python benchmarks/bench_caption_gpu.py --models --vlms qwen2_vl llava --generations greedy top_p \
          --batch_size 32 --images 256 --length 48
CPU smoke run of the same code (tiny CoCa, tiny BLIP and Qwen2-VL): python benchmarks/bench_caption_gpu.py --tiny
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_caption_common import bare_rate, graph_rate, random_coca, vlm_bare_rate, vlm_spec  # noqa: E402
from bench_score_common import samples  # noqa: E402

from curate.caption.handler import caption_handler  # noqa: E402
from curate.caption.settings import CaptionSettings  # noqa: E402
from curate.models.generation import GenerationParams  # noqa: E402
from curate.sample import SampleBatch
from curate.ledger_layout import batch_id  # noqa: E402
from curate.score.inference import InferenceSettings  # noqa: E402


def handler_rate(settings: CaptionSettings, n: int) -> float:
    """captions/s of the handler's run_inference (decode threads overlapped), model loaded beforehand."""
    import torch

    _, handler = caption_handler(settings)
    model = handler.load_model()
    rows = settings.inference.rows_per_batch
    batches = [SampleBatch(batch_id(0, i), samples(n)[i:i + rows]) for i in range(0, n, rows)]
    handler.run_inference(batches[:1], model)  # warm-up
    if model.device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    done = 0
    for b in batches:
        [result] = handler.run_inference([b], model)
        done += sum(c is not None for c in result.inference.captions)
    return done * settings.captions_per_image / (time.perf_counter() - t0)


def _row(label: str, generation: str, device: str, name: str, settings: CaptionSettings, bare: float,
         args) -> dict:
    row = {"model": label, "generation": generation, "device": name, "batch": args.batch_size, "bare": bare,
           "handler": handler_rate(settings, args.images)}
    if not args.no_graph:
        row["graph"] = graph_rate(settings, args.batch_size, args.images + args.batch_size)
    print(f"{label:>15} {generation:>12}  bare {row['bare']:8.1f}/s  handler {row['handler']:8.1f}/s"
          + (f"  graph {row['graph']:8.1f}/s" if "graph" in row else "")
          + f"  handler÷bare {row['handler'] / row['bare']:.2f}", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="*", default=["coca_ViT-L-14", "coca_ViT-B-32"], help="open_clip CoCa configs")
    ap.add_argument("--vlms", nargs="*", default=[],
                    help="transformers captioners: tiny_vlm families (qwen2_vl, llava, blip) or checkpoint folders")
    ap.add_argument("--vlm_size", default="full", help="tiny_vlm size of --vlms families: full | tiny")
    ap.add_argument("--generations", nargs="+", default=None,
                    help="default: beam_search top_p for CoCa, greedy top_p for VLMs")
    ap.add_argument("--length", type=int, default=20, help="tokens per caption")
    ap.add_argument("--batch_size", type=int, default=128, help="images per generate call")
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--decode_threads", type=int, default=8)
    ap.add_argument("--no_graph", action="store_true", help="skip the FnApiRunner figure")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke run: tiny CoCa, tiny BLIP and Qwen2-VL, 16 images")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    if args.tiny:
        args.models, args.vlms, args.vlm_size, args.images, args.batch_size = ["tiny"], ["blip", "qwen2_vl"], \
            "tiny", 16, 8
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            spec = random_coca(model, tmp)
            for generation in args.generations or ["beam_search", "top_p"]:
                params = GenerationParams(generation, seq_len=args.length, min_seq_len=args.length - 1)
                inference = InferenceSettings(device=device, precision="auto", batch_size=args.batch_size,
                                  rows_per_batch=args.batch_size, decode_threads=args.decode_threads)
                settings = CaptionSettings(spec, params, inference)
                results.append(_row(model, generation, device, name, settings,
                                    bare_rate(spec, settings, args.images, device), args))
        for model in args.vlms:
            spec = vlm_spec(model, tmp, args.vlm_size)
            label = f"{model}-{args.vlm_size}" if "/" not in model else model
            for generation in args.generations or ["greedy", "top_p"]:
                params = GenerationParams(generation, seq_len=args.length, min_seq_len=args.length, num_beams=3,
                                          num_beam_groups=1)
                inference = InferenceSettings(device=device, precision="auto", batch_size=args.batch_size,
                                  rows_per_batch=args.batch_size, decode_threads=args.decode_threads)
                settings = CaptionSettings(spec, params, inference)
                results.append(_row(label, generation, device, name, settings,
                                    vlm_bare_rate(spec, settings, args.images, device), args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
