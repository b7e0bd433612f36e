"""SemDeDup on 1M x 512 fp16 embeddings on CPU: time per phase and memory against cluster size.

The corpus lives on disk (as it would in a distributed run); the phases are the functions the
Beam stage runs (curate/dedup/semantic_stage.py, semdedup.py), on the same data flow:
1. sample: bottom-k of the keyed hash of (uid, seed) over all rows, streamed in 10k-row chunks;
2. train: spherical k-means (FAISS) on the sample, --semdedup_clusters auto (one per 10k rows);
3. assign: nearest centroid per row, streamed; rows are appended to one file per cluster
   (what Beam's GroupByKey does);
4. dedup: one cluster at a time, read back and deduplicated.
A thread samples this process's resident memory every 10 ms; each phase reports its peak above
the memory held before it. Phases 3-4 should depend on the largest cluster, not on the corpus.
Data: C topic centres; each row = its centre + noise (normalized); 10 % of rows are near copies
(cosine > 0.99) of another row. Run: python benchmarks/bench_dedup_semdedup.py [--n 1000000]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time

import numpy as np

from curate.dedup import semdedup
from curate.dedup.keys import KEY_DTYPE
from curate.clusters import kmeans
from curate.clusters.transforms import BottomK

CHUNK = 10_000


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakMemory:
    """Peak resident memory of this process above where it started, sampled every 10 ms."""

    def __enter__(self):
        self.start = rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def _watch(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())
        self.above = self.peak - self.start


def make_corpus(path: str, n: int, d: int, topics: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(topics, d)).astype(np.float32)
    copies = n // 10
    with open(path, "wb") as f:
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            rows = centres[rng.integers(0, topics, m)] + 1.5 * rng.normal(size=(m, d)).astype(np.float32)
            rows = kmeans.normalize(rows)
            twins = rng.random(m) < copies / n  # a near copy of the previous row in the chunk
            twins[0] = False
            idx = np.flatnonzero(twins)
            noise = 0.05 / np.sqrt(d) * rng.normal(size=(len(idx), d)).astype(np.float32)
            rows[idx] = kmeans.normalize(rows[idx - 1] + noise)  # cosine ~0.999
            f.write(rows.astype(np.float16).tobytes())


def chunks(path: str, n: int, d: int):
    with open(path, "rb") as f:
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            emb = np.frombuffer(f.read(m * d * 2), dtype=np.float16).reshape(m, d)
            keys = np.zeros(m, KEY_DTYPE)
            keys["batch"] = b"%05d-%010d" % (0, start)
            keys["pos"] = np.arange(m)
            keys["uid"] = [b"%032x" % (i * 2654435761 % (1 << 61)) for i in range(start, start + m)]
            keys["score"] = np.nan
            yield keys, emb


def run(n: int, d: int, topics: int, eps: float, sample: int, workdir: str) -> dict:
    corpus = os.path.join(workdir, "embeddings.f16")
    make_corpus(corpus, n, d, topics)
    out = {"corpus_mb": n * d * 2 / 2**20}
    with PeakMemory() as m:
        combine = BottomK(sample, seed=0)
        acc = combine.create_accumulator()
        for rows in chunks(corpus, n, d):
            acc = combine.add_input(acc, rows)
        picked = combine.extract_output(acc)
    out["sample"] = (m.seconds, m.above)
    with PeakMemory() as m:
        k = kmeans.cluster_count(picked.pool, len(picked.order), 0, semdedup.ROWS_PER_CLUSTER)
        centroids = kmeans.train_centroids(picked.embeddings, k, seed=0)
    del picked, acc
    out["train"] = (m.seconds, m.above)
    out["clusters"] = k
    cluster_dir = os.path.join(workdir, "clusters")
    os.makedirs(cluster_dir, exist_ok=True)
    sizes = np.zeros(k, dtype=np.int64)
    with PeakMemory() as m:
        index = kmeans.CentroidIndex(centroids)
        for keys, emb in chunks(corpus, n, d):
            assigned = index.assign(emb)
            for c in np.unique(assigned):
                mine = assigned == c
                with open(os.path.join(cluster_dir, f"{c}.keys"), "ab") as f:
                    f.write(keys[mine].tobytes())
                with open(os.path.join(cluster_dir, f"{c}.emb"), "ab") as f:
                    f.write(emb[mine].tobytes())
                sizes[c] += int(mine.sum())
    out["assign"] = (m.seconds, m.above)
    dropped = 0
    with PeakMemory() as m:
        for c in range(k):
            if not sizes[c]:
                continue
            keys = np.fromfile(os.path.join(cluster_dir, f"{c}.keys"), dtype=KEY_DTYPE)
            emb = np.fromfile(os.path.join(cluster_dir, f"{c}.emb"), dtype=np.float16).reshape(-1, d)
            dropped += len(semdedup.dedup_cluster(keys, emb, centroids[c], eps, "nearest_centroid"))
    out["dedup"] = (m.seconds, m.above)
    out["dropped"] = dropped
    out["largest_cluster"] = int(sizes.max())
    out["largest_cluster_mb"] = sizes.max() * d * 2 / 2**20
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[250_000, 1_000_000])
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--topics", type=int, default=1000)
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--sample", type=int, default=100_000)
    args = ap.parse_args()
    print("| rows | clusters | largest cluster (rows, fp16 MB) | corpus fp16 MB | phase: seconds / peak MB "
          "above start | dropped |")
    print("|---|---|---|---|---|---|")
    for n in args.n:
        workdir = tempfile.mkdtemp(prefix="bench_semdedup_")
        try:
            r = run(n, args.d, args.topics, args.eps, args.sample, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        phases = "; ".join(f"{p} {r[p][0]:.1f} s / {r[p][1]:.0f} MB" for p in ("sample", "train", "assign", "dedup"))
        print(f"| {n:,} | {r['clusters']} | {r['largest_cluster']:,} ({r['largest_cluster_mb']:.0f}) | "
              f"{r['corpus_mb']:.0f} | {phases} | {r['dropped']:,} ({r['dropped'] / n:.1%}) |", flush=True)


if __name__ == "__main__":
    main()
