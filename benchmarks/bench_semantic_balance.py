"""Semantic balance: the Beam stage vs the same cap computed in memory, on synthetic embeddings.

Data: N rows of d=64 fp16 unit vectors around C = N / 200 topic centres whose sizes follow a
Zipf law (the long tail a semantic cap flattens). Both contenders use the same centroids rule
(SemDeDup's bottom-k sample, FAISS spherical k-means) and must keep the same rows:
- stage: `curate.balance.stage.SemanticBalance` on FnApiRunner, batches of 1000 made inside the
  graph (so no input is held by Create), parked under a temporary folder;
- in memory: every embedding in one array, assign, sort each cluster by the keyed hash, keep T.
Each contender runs in a child process that reports its own wall time and peak RSS (VmHWM).
The k-means sample (--sample, default 10,000 rows) is below the pool, as at scale: the stage's
memory should then not grow with the rows (the sample and T rows per cluster are all it holds).
Run: python benchmarks/bench_semantic_balance.py [--rows 20000 80000 160000] [--t 20]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time

import numpy as np

DIM = 64
BATCH = 1000
ROWS_PER_TOPIC = 200


def topics(rows: int) -> np.ndarray:
    """Topic of each row: Zipf-sized topics, deterministic."""
    n = max(1, rows // ROWS_PER_TOPIC)
    weights = 1.0 / np.arange(1, n + 1)
    return np.random.default_rng(0).choice(n, size=rows, p=weights / weights.sum())


def embeddings(start: int, stop: int, rows: int) -> np.ndarray:
    centres = np.random.default_rng(1).normal(size=(max(1, rows // ROWS_PER_TOPIC), DIM))
    rng = np.random.default_rng(1000 + start)
    e = centres[topics(rows)[start:stop]] + 0.6 * rng.normal(size=(stop - start, DIM))
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float16)


def uid(i: int) -> str:
    return f"{i:032x}"


def make_batch(start: int, rows: int):
    from curate.sample import Sample, SampleBatch
    from curate.ledger_layout import batch_id

    stop = min(rows, start + BATCH)
    vectors = embeddings(start, stop, rows)
    return SampleBatch(batch_id(0, start), [Sample(uid(i), vectors={"clip_embedding": vectors[i - start]})
                                            for i in range(start, stop)])


def run_stage(rows: int, t: int, clusters: int, sample: int, folder: str) -> list[str]:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from curate.balance.options import BalanceSettings
    from curate.balance.stage import SemanticBalance
    from curate.sample import SampleBatch

    cfg = BalanceSettings(clusters=clusters, t=t, sample=sample, vector="clip_embedding", seed=0)
    out_path = f"{folder}/kept.json"
    with beam.Pipeline(options=PipelineOptions(["--runner", "FnApiRunner"])) as p:
        batches = (p | beam.Create(list(range(0, rows, BATCH)))
                   | beam.Map(make_batch, rows).with_output_types(SampleBatch))
        out = batches | SemanticBalance(cfg, folder)
        for i, dropped in enumerate(out.dropped):  # consumed where they are, as the ledger writer parks them
            _ = dropped | f"Ledger{i}" >> beam.Map(lambda part: None)
        _ = (out.kept | beam.FlatMap(lambda b: [s.uid for s in b.samples]) | beam.combiners.ToList()
             | beam.Map(lambda uids: json.dump(sorted(uids), open(out_path, "w"))))
    return json.load(open(out_path))


def run_memory(rows: int, t: int, clusters: int, sample: int) -> list[str]:
    from curate.balance import cap
    from curate.balance.options import ROWS_PER_CLUSTER
    from curate.clusters import kmeans

    e = np.concatenate([embeddings(s, min(rows, s + BATCH), rows) for s in range(0, rows, BATCH)])
    uids = [uid(i) for i in range(rows)]
    order = np.argsort([kmeans.sample_key(u, 0) for u in uids], kind="stable")[:sample]
    k = kmeans.cluster_count(rows, len(order), clusters, ROWS_PER_CLUSTER)
    centroids = kmeans.train_centroids(e[order], k, 0)
    assigned = kmeans.CentroidIndex(centroids).assign(e)
    keys = np.array([cap.rank_key(u, 0) for u in uids], dtype=np.uint64)
    kept = []
    for c in np.unique(assigned):
        members = np.flatnonzero(assigned == c)
        kept.extend(members[np.lexsort((members, keys[members]))[:t]])
    return sorted(uids[i] for i in kept)


def child(args) -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        kept = (run_stage(args.child_rows, args.t, args.clusters, args.sample, folder) if args.child == "stage"
                else run_memory(args.child_rows, args.t, args.clusters, args.sample))
    seconds = time.perf_counter() - started
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "kept": len(kept),
                      "digest": hashlib.sha256("\n".join(kept).encode()).hexdigest()}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 80_000])
    parser.add_argument("--t", type=int, default=20)
    parser.add_argument("--clusters", type=int, default=0)
    parser.add_argument("--sample", type=int, default=10_000, help="k-means training rows (below the pool)")
    parser.add_argument("--child", default=None)
    parser.add_argument("--child_rows", type=int, default=0)
    args = parser.parse_args()
    if args.child:
        return child(args)
    print("| rows | stage s | in memory s | stage rows/s | ratio | stage peak MB | in-memory peak MB | kept | same rows |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for rows in args.rows:
        result = {}
        for who in ("stage", "memory"):
            out = subprocess.run([sys.executable, __file__, "--child", who, "--child_rows", str(rows),
                                  "--t", str(args.t), "--clusters", str(args.clusters), "--sample", str(args.sample)],
                                 capture_output=True, text=True, check=True).stdout
            result[who] = json.loads(out.strip().splitlines()[-1])
        s, m = result["stage"], result["memory"]
        print(f"| {rows:,} | {s['seconds']:.1f} | {m['seconds']:.1f} | {rows / s['seconds']:,.0f} | "
              f"{m['seconds'] / s['seconds']:.2f} | {s['peak_mb']:.0f} | {m['peak_mb']:.0f} | {s['kept']:,} | "
              f"{s['kept'] == m['kept'] and s['digest'] == m['digest']} |", flush=True)


if __name__ == "__main__":
    main()
