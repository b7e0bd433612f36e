"""Peak memory and speed of image runs as the number of images grows (issue: flat memory).

Runs `dedup` and `metaclip` on an image folder and `download` from a loopback server, each as a
child process on FnApiRunner, at each size; reports images/s and the child's own peak RSS
(VmHWM). With --baseline REV the same runs are made with the code of that commit (checked out
into a temporary worktree) side by side, in the same script run, so ratios compare like with
like on a noisy machine.

Run: python benchmarks/bench_scale_memory.py --sizes 5000 40000 --baseline 1adb8d3
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_metaclip_pipeline import _CHILD  # noqa: E402  (the child reports its own VmHWM)
from scale_images import subset, write_folder  # noqa: E402


def run_child(code_root: str, args: list[str]) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": code_root, "NO_ALBUMENTATIONS_UPDATE": "1"}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, "--runner", "FnApiRunner", *args], cwd=code_root,
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    peak_kb = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("VmHWM_KB"))
    return seconds, peak_kb / 1024


def url_list(path: str, n: int, port: int, distinct: int) -> str:
    import json

    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"url": f"http://127.0.0.1:{port}/ok/{i}/{i % distinct}.jpg",
                                "caption": f"a photo number {i}"}) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(images: str, distinct: int, tmp: str):
    corpus = os.path.join(tmp, "corpus")
    os.makedirs(corpus, exist_ok=True)
    for i in range(distinct):
        link = os.path.join(corpus, f"{i}.jpg")
        if not os.path.lexists(link):
            os.symlink(os.path.join(images, f"img{i:07d}.jpg"), link)
    port = free_port()
    server = subprocess.Popen([sys.executable, os.path.join(HERE, "bench_download_server.py"), corpus,
                               str(port), "1"], stdout=subprocess.PIPE)
    assert server.stdout.readline().strip() == b"ready"
    return server, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 40000])
    ap.add_argument("--recipes", nargs="+", default=["dedup", "metaclip", "download"])
    ap.add_argument("--images", default=os.path.join(tempfile.gettempdir(), "scale-images"),
                    help="generated JPEGs are cached here")
    ap.add_argument("--baseline", help="a commit to run side by side (e.g. the one before this change)")
    ap.add_argument("--baseline_sizes", type=int, nargs="+", help="sizes for the baseline (default: the smallest)")
    args = ap.parse_args()
    write_folder(args.images, max(args.sizes))
    codes = {"now": ROOT}
    tmp = tempfile.mkdtemp(prefix="bench-scale-")
    if args.baseline:
        codes["baseline"] = os.path.join(tmp, "baseline")
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "-q", "--detach", codes["baseline"], args.baseline],
                       check=True)
    server, port = start_server(args.images, 2000, tmp) if "download" in args.recipes else (None, None)
    print(f"{'recipe':<10}{'code':<10}{'images':>8}{'images/s':>10}{'peak RSS MiB':>14}", flush=True)
    try:
        for recipe in args.recipes:
            for n in sorted(args.sizes):
                folder = subset(args.images, n, os.path.join(tmp, f"folder_{n}"))
                for name, code in codes.items():
                    if name == "baseline" and n not in (args.baseline_sizes or [min(args.sizes)]):
                        continue
                    out = os.path.join(tmp, f"out_{recipe}_{name}_{n}")
                    if recipe == "download":
                        extra = ["--pipeline", "download", "--allow_private_addresses",
                                 "--input", url_list(os.path.join(tmp, f"urls_{n}.jsonl"), n, port, 2000)]
                    elif recipe == "metaclip":
                        extra = ["--pipeline", "metaclip", "--input", folder, "--t", "1000000000"]
                    else:
                        extra = ["--pipeline", "dedup", "--input", folder]
                    seconds, peak = run_child(code, [*extra, "--output", out])
                    print(f"{recipe:<10}{name:<10}{n:>8,}{n / seconds:>10,.1f}{peak:>14,.0f}", flush=True)
                    subprocess.run(["rm", "-rf", out])
    finally:
        if server is not None:
            server.terminate()
        if args.baseline:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", codes["baseline"]])


if __name__ == "__main__":
    main()
