"""Scoring throughput on a GPU: ViT-B/32 and ViT-L/14, bf16 autocast, random-init weights.

For each model, images/s of:
  model only        uint8 pixels and tokens already on the GPU: normalize + encode_image + encode_text
  e2e cpu decode    our ModelHandler.run_inference: PIL decode/resize on --decode_threads CPU threads,
                    overlapped with the model (what a worker does, without Beam)
  e2e gpu decode    the same with --score_decode gpu: torchvision nvJPEG decode + resize on the GPU
  graph cpu/gpu     ScoreWith inside a FnApiRunner pipeline (marginal rate, model shared across
                    processes as on a GPU worker), both decode modes
Images are the bundled COCO JPEGs (~640x480) repeated; captions their real captions.

GPU:  python benchmarks/bench_score_gpu.py --models ViT-B-32 ViT-L-14 --batch_size 256 --images 4096
CPU smoke run of the same code (tiny model): python benchmarks/bench_score_gpu.py --tiny
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_score_common import beam_rate, random_model, samples  # noqa: E402

from curate.models.clip import ClipInputs, ClipModel  # noqa: E402
from curate.sample import SampleBatch
from curate.ledger_layout import batch_id  # noqa: E402
from curate.score.handler import OpenClipHandler, InferenceSettings  # noqa: E402


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def model_only(model: ClipModel, inputs: ClipInputs, batch_size: int, steps: int) -> float:
    import numpy as np
    import torch

    items = samples(batch_size)
    pixels = torch.from_numpy(np.stack([inputs.pixels(s.image) for s in items])).to(model.device)
    tokens = torch.from_numpy(inputs.tokens([s.caption for s in items])).to(model.device)
    model.embed_normalized(model.normalize(pixels), tokens)  # warm-up (kernels, autotuning)
    _sync(model.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.embed_normalized(model.normalize(pixels), tokens)
    _sync(model.device)
    return steps * batch_size / (time.perf_counter() - t0)


def end_to_end(spec, model: ClipModel, inference: InferenceSettings, n: int) -> float:
    """Our handler's run_inference on n samples (decode, tokenize, model, scores), no Beam."""
    handler = OpenClipHandler(spec, inference)
    items = samples(n)
    batches = [SampleBatch(batch_id(0, i), items[i:i + inference.rows_per_batch])
               for i in range(0, n, inference.rows_per_batch)]
    handler.run_inference(batches[:1], model)  # warm-up
    _sync(model.device)
    t0 = time.perf_counter()
    for batch in batches:
        handler.run_inference([batch], model)
    _sync(model.device)
    return n / (time.perf_counter() - t0)


def bench_model(name: str, args, folder: str) -> dict:
    spec = random_model(name, folder)
    model = ClipModel(spec, args.device, args.precision)
    inputs = ClipInputs(spec, model.input_config())
    rows_per_batch = max(args.batch_size, 1000)
    result = {"model": name, "device": model.device, "precision": args.precision, "batch_size": args.batch_size,
              "model_only": model_only(model, inputs, args.batch_size, args.steps)}
    for decode in ("cpu", "gpu"):
        inference = InferenceSettings(device=args.device, precision=args.precision, batch_size=args.batch_size,
                          rows_per_batch=rows_per_batch, decode=decode, decode_threads=args.decode_threads)
        result[f"e2e_{decode}_decode"] = end_to_end(spec, model, inference, args.images)
        if not args.skip_graph:
            result[f"graph_{decode}_decode"], _ = beam_rate(spec, inference, args.images // 4, args.images)
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["ViT-B-32", "ViT-L-14"])
    ap.add_argument("--tiny", action="store_true", help="smoke run on CPU with a tiny model")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--batch_size", type=int, default=256)
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=20, help="model-only forward passes")
    ap.add_argument("--decode_threads", type=int, default=0, help="CPU decode threads (0: one per core)")
    ap.add_argument("--skip_graph", action="store_true", help="skip the in-graph (Beam) measurements")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    if args.tiny:
        args.models, args.device, args.precision = ["tiny"], "cpu", "fp32"
        args.batch_size, args.images, args.steps = 32, 128, 3
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            results.append(bench_model(name, args, folder))
            print(json.dumps(results[-1]), flush=True)
    columns = [c for c in results[0] if c not in ("model", "device", "precision", "batch_size")]
    print(f"{'model':<10}{'device':<8}" + "".join(f"{c:>18}" for c in columns))
    for r in results:
        print(f"{r['model']:<10}{r['device']:<8}" + "".join(f"{r[c]:>18.1f}" for c in columns))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
