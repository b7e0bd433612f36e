"""A cascade's models on a GPU (bf16 autocast, random init): model-only and end-to-end images/s.

For each model:
  model only   pixels and tokens already on the GPU (bench_prefilter_cpu's loop, bf16 autocast)
  e2e cpu      our ModelHandler.run_inference on real JPEGs (the bundled COCO photos repeated):
               PIL decode/resize on --decode_threads CPU threads overlapped with the model
  e2e gpu      the same with --score_decode gpu (nvJPEG decode + resize on the GPU)
The end-to-end figures say whether decoding, not the model, bounds a cheap prefilter (it decodes
every image of the pool, and the expensive model decodes the survivors again).

GPU:  python benchmarks/bench_prefilter_gpu.py --batch_size 256 --images 4096 --out prefilter-gpu.json
CPU smoke run of the same code (small, figures mean nothing):
      python benchmarks/bench_prefilter_gpu.py --device cpu --batch_size 4 --images 8 --models tinyclip-8m-16
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_prefilter_cpu import BASELINE, DEFAULT_MODELS, HF_SHAPES, measure, report  # noqa: E402
from bench_score_common import random_model, samples  # noqa: E402

from curate.models.hf_clip import write_tiny_hf_clip  # noqa: E402
from curate.models.resolve import resolve  # noqa: E402
from curate.sample import SampleBatch
from curate.ledger_layout import batch_id  # noqa: E402
from curate.score.handler import OpenClipHandler, InferenceSettings  # noqa: E402


def saved_spec(name: str, folder: str):
    """A resolved spec of a random-init model saved like real weights (what a run loads)."""
    if name in HF_SHAPES:
        shape = HF_SHAPES[name]
        path = write_tiny_hf_clip(os.path.join(folder, name), seed=0, vision=shape["vision"], text=shape["text"],
                                  projection_dim=shape["projection_dim"])
        return resolve("prefilter", path, None)
    return random_model(name, folder)


def end_to_end(spec, inference: InferenceSettings, n: int) -> float:
    handler = OpenClipHandler(spec, inference)
    model = handler.load_model()
    items = samples(n)
    batches = [SampleBatch(batch_id(0, i), items[i:i + inference.rows_per_batch]) for i in range(0, n, inference.rows_per_batch)]
    list(handler.run_inference(batches[:1], model))  # warm-up: decode pool, kernels
    t0 = time.perf_counter()
    for start in range(0, len(batches), 4):
        list(handler.run_inference(batches[start:start + 4], model))
    return n / (time.perf_counter() - t0)


def main(argv=None) -> dict:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--images", type=int, default=4096, help="images per end-to-end measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--decode_threads", type=int, default=0, help="0: one per core")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    on_gpu = args.device.startswith("cuda")
    dtype = torch.bfloat16 if on_gpu else None
    result = {"device": torch.cuda.get_device_name() if on_gpu else "cpu", "batch_size": args.batch_size,
              "precision": "bf16" if on_gpu else "fp32", "cpu_cores": os.cpu_count(),
              "model_only": measure(args.models, args.batch_size, args.rounds, args.steps, args.device, dtype)}
    e2e = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            spec = saved_spec(name, folder)
            e2e[name] = {}
            for decode in (("cpu", "gpu") if on_gpu else ("cpu",)):
                inference = InferenceSettings(device=args.device, batch_size=args.batch_size, rows_per_batch=args.batch_size,
                                  decode=decode, decode_threads=args.decode_threads)
                e2e[name][f"e2e_{decode}_decode_images_per_s"] = round(end_to_end(spec, inference, args.images), 1)
    result["end_to_end"] = e2e
    result["baseline"] = BASELINE
    return report(result, args.out)


if __name__ == "__main__":
    main()
