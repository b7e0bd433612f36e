"""img2dataset 1.47.0 vs curate's `download` recipe: same URL list, same server, same cores.

Serves real images (the bundled COCO photos re-encoded at several sizes and formats) from a
local asyncio server on several loopback hosts (benchmarks/bench_download_server.py), with
about 10 % injected faults: 429 with Retry-After (4 %), 503 once (4 %), a request held past
the deadline once (2 %). Each tool runs as a child process, writing WebDataset shards, with
the same per-request timeout and the same total concurrency on the same cores; the server forgets what it saw
before each run, so every run meets the same faults. Reports images/s (successes over the
child's wall time, start-up included), success rate, and medians over the repeats; runs
alternate between the tools, as the machine's load drifts.

Run: python benchmarks/bench_download.py --urls 4000 --repeats 2
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_IMAGES = os.path.join(ROOT, "curate", "data", "sample", "images")
# (longest side or None for the original, format, Pillow options)
VARIANTS = [(None, "jpg", {"quality": 90}), (400, "jpg", {"quality": 85}),
            (256, "webp", {"quality": 80}), (160, "png", {})]
FAULTS = [("r429", 0.04), ("e503", 0.04), ("slow", 0.02)]
PIL_NAMES = {"jpg": "JPEG", "webp": "WEBP", "png": "PNG"}


def build_corpus(folder: str) -> list[str]:
    """Every bundled photo in every variant; returns the extension of each file, by index."""
    exts = []
    for path in sorted(glob.glob(os.path.join(SAMPLE_IMAGES, "*.jpg"))):
        with Image.open(path) as original:
            original = original.convert("RGB")
            for side, ext, opts in VARIANTS:
                image = original.copy()
                if side:
                    image.thumbnail((side, side))
                buffer = io.BytesIO()
                image.save(buffer, PIL_NAMES[ext], **opts)
                with open(os.path.join(folder, f"{len(exts)}.{ext}"), "wb") as f:
                    f.write(buffer.getvalue())
                exts.append(ext)
    return exts


def fault_of(i: int) -> str:
    u = int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "big") / 2**64
    for kind, share in FAULTS:
        if u < share:
            return kind
        u -= share
    return "ok"


def write_url_list(path: str, n: int, exts: list[str], port: int, hosts: int) -> dict:
    urls, kinds = [], {}
    for i in range(n):
        kind = fault_of(i)
        kinds[kind] = kinds.get(kind, 0) + 1
        file = i % len(exts)
        urls.append(f"http://127.0.0.{i % hosts + 1}:{port}/{kind}/{i}/{file}.{exts[file]}")
    captions = [f"photo {i} from the bundled sample" for i in range(n)]
    pq.write_table(pa.table({"url": urls, "caption": captions}), path)
    return kinds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_img2dataset(urls: str, out: str, args) -> tuple[float, int, int]:
    code = (
        "import img2dataset; img2dataset.download("
        f"url_list={urls!r}, input_format='parquet', url_col='url', caption_col='caption', "
        f"output_folder={out!r}, output_format='webdataset', processes_count={args.img2dataset_processes}, "
        f"thread_count={args.concurrency // args.img2dataset_processes}, timeout={args.timeout}, "
        f"retries={args.img2dataset_retries}, resize_mode={args.resize_mode!r}, image_size={args.image_size}, "
        f"skip_reencode={args.resize_mode == 'no'}, "
        f"number_sample_per_shard=10000, distributor='multiprocessing', enable_wandb=False)"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})
    wall = time.perf_counter() - started
    ok = total = 0
    for stats in glob.glob(os.path.join(out, "*_stats.json")):
        with open(stats) as f:
            s = json.load(f)
        ok += s["successes"]
        total += s["count"]
    return wall, ok, total


def run_curate(urls: str, out: str, args) -> tuple[float, int, int]:
    workers = ["--direct_num_workers", str(args.curate_processes), "--direct_running_mode", "multi_processing"] \
        if args.curate_processes > 1 else []
    cmd = [sys.executable, "-m", "curate.run", "--pipeline", "download", "--input", urls, "--output", out,
           "--runner", "FnApiRunner", *workers, "--allow_private_addresses",
           "--download_concurrency", str(args.concurrency // args.curate_processes),
           "--download_timeout", str(args.timeout), "--batch_size", str(args.batch_size),
           "--resize_mode", args.resize_mode, "--image_size", str(args.image_size)]
    started = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"curate failed:\n{done.stderr[-5000:]}")
    with open(os.path.join(out, "stats.json")) as f:
        stats = json.load(f)
    return wall, stats["kept"], stats["inputs"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--urls", type=int, default=4000)
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--img2dataset_processes", type=int, default=os.cpu_count() or 1,
                    help="img2dataset's processes_count (its advice: the number of cores)")
    ap.add_argument("--curate_processes", type=int, default=1,
                    help="FnApiRunner worker processes (1: one process, threads for decoding)")
    ap.add_argument("--concurrency", type=int, default=128, help="concurrent requests per tool, in all")
    ap.add_argument("--timeout", type=int, default=5)
    ap.add_argument("--batch_size", type=int, default=256)
    ap.add_argument("--img2dataset_retries", type=int, default=0, help="its default: 0")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--resize_mode", default="no",
                    help="both tools (img2dataset's Resizer in both); 'no': curate keeps the original "
                         "bytes, img2dataset re-encodes only non-JPEGs (skip_reencode)")
    ap.add_argument("--image_size", type=int, default=256)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus")
        os.makedirs(corpus)
        exts = build_corpus(corpus)
        port = free_port()
        urls = os.path.join(tmp, "urls.parquet")
        kinds = write_url_list(urls, args.urls, exts, port, args.hosts)
        server = subprocess.Popen([sys.executable, os.path.join(ROOT, "benchmarks", "bench_download_server.py"),
                                   corpus, str(port), str(args.hosts)], stdout=subprocess.PIPE)
        assert server.stdout.readline().strip() == b"ready"
        print(f"{args.urls} URLs on {args.hosts} hosts, {len(exts)} distinct images, faults {kinds}; "
              f"processes: img2dataset {args.img2dataset_processes}, curate {args.curate_processes}; "
              f"{args.concurrency} concurrent requests per tool, "
              f"timeout {args.timeout} s, resize {args.resize_mode}, {os.cpu_count()} cores")
        print(f"{'tool':<12}{'run':>4}{'wall s':>9}{'images/s':>10}{'success':>9}")
        results: dict[str, list] = {"img2dataset": [], "curate": []}
        try:
            for repeat in range(args.repeats):
                for name, fn in (("img2dataset", run_img2dataset), ("curate", run_curate)):
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/_reset").read()
                    wall, ok, total = fn(urls, os.path.join(tmp, f"{name}{repeat}"), args)
                    results[name].append((wall, ok, total))
                    print(f"{name:<12}{repeat:>4}{wall:>9.1f}{ok / wall:>10.1f}{ok / total:>9.1%}", flush=True)
        finally:
            server.terminate()
            server.wait()
    summary(results)


def summary(results: dict[str, list]) -> None:
    """Medians over the repeats, and the ratio of the medians."""
    def median(values):
        values = sorted(values)
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2

    rate = {n: median([ok / wall for wall, ok, _ in runs]) for n, runs in results.items()}
    success = {n: median([ok / total for _, ok, total in runs]) for n, runs in results.items()}
    print(f"medians: images/s curate {rate['curate']:.1f}, img2dataset {rate['img2dataset']:.1f} "
          f"({rate['curate'] / rate['img2dataset']:.2f}x); success {success['curate']:.1%} vs "
          f"{success['img2dataset']:.1%} ({(success['curate'] - success['img2dataset']) * 100:+.1f} points)")


if __name__ == "__main__":
    main()
