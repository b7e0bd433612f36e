"""Model-only scoring speed of a cascade's cheap and expensive models (random init, CPU).

images/s = image-text pairs per second through the scorer's own encoder calls (what HfClipModel
and ClipModel run: get_image_features + get_text_features, or encode_image + encode_text, then
L2 normalization), pixels and tokens already in memory (224 px, 77 tokens). Models:

  tinyclip-8m-16   transformers CLIPModel with TinyCLIP ViT-8M/16 Text-3M's shape (vision 256 wide,
                   10 layers, patch 16; text 256 wide, 3 layers; projection 512)
  vit-b-32-hf      transformers CLIPModel with OpenAI ViT-B/32's shape (framework check)
  ViT-B-32         open_clip ViT-B/32 (what the laion recipe scores with)
  ViT-L-14         open_clip ViT-L/14 (what dfn and datacomp score with): the baseline of the ratios

Weights are random (they do not change speed). The machine is shared: small batches, few
rounds, contenders interleaved per round, the median per model.

    python benchmarks/bench_prefilter_cpu.py --batch_size 8 --rounds 3 --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

TEXT_LEN = 77
VOCAB = 49408
EOT = 49407

TINYCLIP_8M_16 = {"vision": {"image_size": 224, "patch_size": 16, "hidden_size": 256, "intermediate_size": 1024,
                             "num_hidden_layers": 10, "num_attention_heads": 4},
                  "text": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 3,
                           "num_attention_heads": 4, "max_position_embeddings": TEXT_LEN, "vocab_size": VOCAB},
                  "projection_dim": 512}
VIT_B_32_HF = {"vision": {"image_size": 224, "patch_size": 32, "hidden_size": 768, "intermediate_size": 3072,
                          "num_hidden_layers": 12, "num_attention_heads": 12},
               "text": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                        "num_attention_heads": 8, "max_position_embeddings": TEXT_LEN, "vocab_size": VOCAB},
               "projection_dim": 512}
HF_SHAPES = {"tinyclip-8m-16": TINYCLIP_8M_16, "vit-b-32-hf": VIT_B_32_HF}
DEFAULT_MODELS = ["tinyclip-8m-16", "vit-b-32-hf", "ViT-B-32", "ViT-L-14"]
BASELINE = "ViT-L-14"


def build(name: str, device: str):
    """(encode(pixels, tokens) -> (image, text) embeddings, parameter count) of a random-init model."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    if name in HF_SHAPES:
        from transformers import CLIPConfig, CLIPModel

        shape = HF_SHAPES[name]
        model = CLIPModel(CLIPConfig(text_config=shape["text"], vision_config=shape["vision"],
                                     projection_dim=shape["projection_dim"]))

        def encoders(pixels, tokens):
            return (model.get_image_features(pixel_values=pixels),
                    model.get_text_features(input_ids=tokens, attention_mask=torch.ones_like(tokens)))
    else:
        import open_clip

        model = open_clip.create_model(name)

        def encoders(pixels, tokens):
            return model.encode_image(pixels), model.encode_text(tokens)
    model.to(device).eval()
    params = sum(p.numel() for p in model.parameters())

    def encode(pixels, tokens, dtype=None):
        with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            image, text = encoders(pixels, tokens)
        return F.normalize(image.float(), dim=-1), F.normalize(text.float(), dim=-1)

    return encode, params


def inputs(batch_size: int, device: str):
    """Normalized-range pixels and token rows ending in the end-of-text token, on the device."""
    import torch

    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch_size, 3, 224, 224, generator=g).to(device)
    tokens = torch.randint(1, EOT - 1, (batch_size, TEXT_LEN), generator=g)
    tokens[:, 0], tokens[:, -1] = EOT - 1, EOT
    return pixels, tokens.to(device)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def rate(encode, pixels, tokens, steps: int, device: str, dtype=None) -> tuple[float, float]:
    """(images/s wall clock, process CPU ms per image): CPU time is steadier on a busy machine."""
    encode(pixels, tokens, dtype)  # warm-up
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        encode(pixels, tokens, dtype)
    sync(device)
    n = steps * len(pixels)
    return n / (time.perf_counter() - t0), 1000 * (time.process_time() - c0) / n


def measure(models: list[str], batch_size: int, rounds: int, steps: int, device: str, dtype=None) -> dict:
    built = {name: build(name, device) for name in models}
    pixels, tokens = inputs(batch_size, device)
    rates = {name: [] for name in models}
    for _ in range(rounds):  # interleaved: load from other work hits every model alike
        for name, (encode, _) in built.items():
            rates[name].append(rate(encode, pixels, tokens, steps, device, dtype))
    def median(name, i):
        return statistics.median(r[i] for r in rates[name])

    out = {}
    for name in models:
        out[name] = {"params_m": round(built[name][1] / 1e6, 1), "images_per_s": round(median(name, 0), 2),
                     "cpu_ms_per_image": round(median(name, 1), 1),
                     "rounds": [round(r[0], 2) for r in rates[name]]}
        if BASELINE in rates:  # how many times cheaper than the baseline, by wall clock and by CPU time
            out[name][f"speedup_vs_{BASELINE}"] = round(median(name, 0) / median(BASELINE, 0), 2)
            out[name][f"cpu_speedup_vs_{BASELINE}"] = round(median(BASELINE, 1) / median(name, 1), 2)
    return out


def decode_ms(n: int) -> float:
    """CPU ms per image of the scorer's decode + resize + crop to 224 px (HfClipInputs.pixels,
    the checkpoint's CLIPImageProcessor) on the bundled ~640x480 COCO JPEGs: paid once per model
    a sample reaches, so twice for a cascade survivor."""
    import tempfile

    from bench_score_common import sample_pairs

    from curate.models.hf_clip import HfClipInputs, write_tiny_hf_clip
    from curate.models.resolve import resolve

    with tempfile.TemporaryDirectory() as folder:
        spec = resolve("prefilter", write_tiny_hf_clip(folder, vision={"image_size": 224}), None)
        inputs = HfClipInputs(spec, {"size": 224, "context_length": 32})
        images = [image for image, _ in sample_pairs()][:n]
        inputs.pixels(images[0])
        c0 = time.process_time()
        for image in images:
            inputs.pixels(image)
        return 1000 * (time.process_time() - c0) / len(images)


def report(result: dict, out: str | None) -> dict:
    print(json.dumps(result, indent=1))
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return result


def main(argv=None) -> dict:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1, help="timed forward passes per round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--decode_images", type=int, default=64, help="images for the decode figure (0: skip)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"device": "cpu", "threads": args.threads, "batch_size": args.batch_size, "precision": "fp32",
              "models": measure(args.models, args.batch_size, args.rounds, args.steps, "cpu")}
    if args.decode_images:
        result["decode_cpu_ms_per_image"] = round(decode_ms(args.decode_images), 2)
    return report(result, args.out)


if __name__ == "__main__":
    main()
