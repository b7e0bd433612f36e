"""Worldwide (MetaCLIP 2) text-only curation vs the v1 graph on the same multilingual pool.

Writes N captions as a Parquet URL list: a word-bigram Markov chain trained on the bundled
multilingual sample (real LAION alt-texts in many languages plus the constructed zh/ja/th/ko
rows; a caption without spaces is one "word", so CJK/Thai captions come back whole). Runs
`--pipeline metaclip` (v1: no language ID, the 175k-entry English list) and `--pipeline
metaclip2` (lid.176 per caption, the shipped per-language lists) on it, each in a child process
that reports its own peak RSS (VmHWM). Reports captions/s of each, the ratio, and peak RSS per N.

Run: python benchmarks/bench_metaclip2.py --sizes 250000 1000000 4000000
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from bench_metaclip_pipeline import pipeline_run, write_url_list  # noqa: E402
from corpus import markov_captions  # noqa: E402

from curate.inputs import bundled_worldwide_sample  # noqa: E402


def worldwide_captions(n: int, seed: int = 0) -> list[str]:
    with open(bundled_worldwide_sample(), encoding="utf-8") as f:
        return markov_captions(n, seed, source=[json.loads(line)["caption"] for line in f])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000])
    ap.add_argument("--batch_size", type=int, default=10_000)
    args = ap.parse_args()
    captions = worldwide_captions(max(args.sizes))
    print(f"{'captions':>10}{'v1/s':>9}{'v2/s':>9}{'v2/v1':>7}{'v1 RSS MiB':>12}{'v2 RSS MiB':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(args.sizes):
            path = os.path.join(tmp, f"urls_{n}.parquet")
            write_url_list(path, captions[:n])
            common = ["--batch_size", str(args.batch_size)]
            v1_s, v1_peak = pipeline_run(path, os.path.join(tmp, f"v1_{n}"), ["--pipeline", "metaclip", *common])
            v2_s, v2_peak = pipeline_run(path, os.path.join(tmp, f"v2_{n}"), ["--pipeline", "metaclip2", *common])
            v1, v2 = n / v1_s, n / v2_s
            print(f"{n:>10,}{v1:>9,.0f}{v2:>9,.0f}{v2 / v1:>7.2f}{v1_peak:>12,.0f}{v2_peak:>12,.0f}", flush=True)


if __name__ == "__main__":
    main()
