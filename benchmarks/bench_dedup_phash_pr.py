"""pHash near-duplicate precision/recall per transformation vs --phash_radius, on real photos.

Every bundled COCO photo (76) and its transformed copies (tests/image_variants.py) form one
pool. Recall of a transformation at radius r: share of its copies within r bits of their
original. Precision at r: of all pool pairs within r bits, the share that are copies of one
photo (pairs of different photos are false matches). Also: the distance distribution of
unrelated photo pairs, and pHash time per image. Run: python benchmarks/bench_dedup_phash_pr.py
"""
from __future__ import annotations

import glob
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/ holds the reference
from curate.dedup.hamming import popcount
from curate.hashes.phash import phash
from tests.image_variants import TRANSFORMS, variants  # noqa: E402
from curate.inputs import bundled_sample

RADII = (0, 2, 4, 6, 8, 10, 12, 14, 16)


def main():
    files = sorted(glob.glob(os.path.join(bundled_sample(), "images", "*.jpg")))
    originals, copies, seconds = [], {name: [] for name in TRANSFORMS}, 0.0
    for path in files:
        data = open(path, "rb").read()
        made = variants(data)
        t0 = time.perf_counter()
        originals.append(phash(data))
        for name, copy in made.items():
            copies[name].append(phash(copy))
        seconds += time.perf_counter() - t0
    per_image_ms = seconds / (len(files) * (1 + len(TRANSFORMS))) * 1000
    orig = np.array(originals, dtype=np.uint64)
    print(f"{len(files)} photos x {len(TRANSFORMS)} transformations; pHash {per_image_ms:.1f} ms/image "
          "(decode included, 1 core)\n")
    print("recall (share of copies within r bits of their original)")
    print("| transformation | " + " | ".join(f"r={r}" for r in RADII) + " | median bits |")
    print("|---|" + "---|" * (len(RADII) + 1))
    for name, hashes in copies.items():
        d = popcount(orig ^ np.array(hashes, dtype=np.uint64))
        print(f"| {name} | " + " | ".join(f"{(d <= r).mean():.2f}" for r in RADII) + f" | {np.median(d):.0f} |")
    pool = np.concatenate([orig] + [np.array(h, dtype=np.uint64) for h in copies.values()])
    photo = np.tile(np.arange(len(files)), 1 + len(copies))
    i, j = np.triu_indices(len(pool), 1)
    d = popcount(pool[i] ^ pool[j])
    same = photo[i] == photo[j]
    print("\nprecision over the pool (all pairs of its "
          f"{len(pool)} images; {int(same.sum())} same-photo pairs, {int((~same).sum())} different-photo pairs)")
    print("| r | pairs within r | false (different photos) | precision | pair recall |")
    print("|---|---|---|---|---|")
    for r in RADII:
        within = d <= r
        tp, fp = int((within & same).sum()), int((within & ~same).sum())
        print(f"| {r} | {tp + fp} | {fp} | {tp / max(1, tp + fp):.4f} | {tp / same.sum():.3f} |")
    unrelated = popcount(orig[:, None] ^ orig[None, :])[np.triu_indices(len(orig), 1)]
    print(f"\nunrelated photos: min {unrelated.min()} bits, 0.1/1/5/50 percentiles "
          f"{np.percentile(unrelated, [0.1, 1, 5, 50]).round(1).tolist()}")


if __name__ == "__main__":
    main()
