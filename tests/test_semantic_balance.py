"""Semantic balance (RealSyn): per k-means cluster, all of at most T samples, else exactly the T
of smallest keyed hash; the same on any batch split and worker count; after MetaCLIP in a run."""
import hashlib
import json
import os
import sys

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.internal.cloudpickle import cloudpickle
from apache_beam.options.pipeline_options import PipelineOptions

from curate.balance import cap
from curate.balance.options import BalanceSettings
from curate.balance.stage import SemanticBalance
from curate.models.tiny import write_tiny_model
from curate.run import main
from curate.sample import Sample, SampleBatch, make_uid
from curate.ledger_layout import batch_id
from tests.conftest import read_ledger, run_curate
from tests.test_no_heavy_shuffle import crossings  # noqa: F401  (the fixture counting samples Beam encodes)

T = 10
BLOBS = (4, 34, 80)  # samples per well-separated blob: one under T, two over (3 x 39 rows: 3 clusters)
VECTOR = "clip_embedding"
DUPLICATE = 20  # this row appears twice (same uid): ties are settled by input order
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # worker processes cannot import tests/


def _samples(with_vectors: bool = True) -> list[Sample]:
    rng = np.random.default_rng(0)
    out = []
    for blob, size in enumerate(BLOBS):
        for _ in range(size):
            vector = np.eye(16)[blob] + 0.05 * rng.normal(size=16)
            row = len(out)
            sample = Sample(make_uid(f"http://x/{row}", "a photo"), f"http://x/{row}", "a photo",
                            extras={"row": row, "blob": blob})
            if with_vectors:
                sample.vectors[VECTOR] = (vector / np.linalg.norm(vector)).astype(np.float16)
            out.append(sample)
    twin = out[DUPLICATE]
    out.insert(DUPLICATE + 1, Sample(twin.uid, twin.url, twin.caption, extras={**twin.extras, "row": DUPLICATE + 0.5},
                                     vectors=dict(twin.vectors)))
    return out


def _batches(samples: list[Sample], size: int) -> list[SampleBatch]:
    return [SampleBatch(batch_id(0, start), samples[start:start + size]) for start in range(0, len(samples), size)]


def _kept_rows(batch: SampleBatch):
    for s in batch.samples:
        yield {"row": s.extras["row"], "status": "kept", "reason": None, "cluster": s.values.get("semantic_cluster"),
               "size": s.values.get("semantic_cluster_size"), "uid": s.uid, "blob": s.extras["blob"]}


def _dropped_rows(part):
    _, rows = part
    for r in rows.to_pylist():
        yield {"row": r["row"], "status": r["status"], "reason": r["reason"], "cluster": r["semantic_cluster"],
               "size": r["semantic_cluster_size"], "uid": r["uid"], "blob": r["blob"]}


def _write(rows, path):
    with open(path, "w") as f:
        json.dump(sorted(rows, key=lambda r: r["row"]), f)


def _batch_at(index: int, size: int, vectors: bool) -> SampleBatch:
    return _batches(_samples(vectors), size)[index]


def _balance(tmp_path, name, *flags, size=1000, vectors=True, empty=False):
    """Run the stage alone on FnApiRunner; (ledger-like rows by input row, stage facts).

    Batches are made inside the graph, so Beam never encodes one unless the stage makes it."""
    cfg = BalanceSettings(clusters=3, t=T, sample=1000, vector=VECTOR, seed=0)
    rows_path, facts_path = str(tmp_path / f"{name}.json"), str(tmp_path / f"{name}-facts.json")
    options = PipelineOptions(["--runner", "FnApiRunner", *flags])
    with beam.Pipeline(options=options) as p:
        indices = [] if empty else range(len(_batches(_samples(), size)))
        batches = p | beam.Create(indices) | beam.Map(_batch_at, size, vectors).with_output_types(SampleBatch)
        out = batches | SemanticBalance(cfg, str(tmp_path / name))
        kept = out.kept | "Kept" >> beam.FlatMap(_kept_rows)
        dropped = tuple(out.dropped) | "AllDropped" >> beam.Flatten() | "Dropped" >> beam.FlatMap(_dropped_rows)
        (kept, dropped) | beam.Flatten() | beam.combiners.ToList() | "WriteRows" >> beam.Map(_write, rows_path)
        out.facts | "WriteFacts" >> beam.Map(lambda f: json.dump(f, open(facts_path, "w")))
    return json.load(open(rows_path)), json.load(open(facts_path))


def _rank(uid: str, seed: int = 0) -> int:
    """The keyed hash, written out independently of curate.balance.cap."""
    return int.from_bytes(hashlib.blake2b(f"semantic-balance\x00{seed}\x00{uid}".encode(), digest_size=8).digest(), "big")


def _expected_kept(rows, t: int = T) -> set:
    """Per cluster: all rows if at most t, else the t of smallest (hash, uid, input row)."""
    kept = set()
    for cluster in {r["cluster"] for r in rows}:
        members = sorted((r for r in rows if r["cluster"] == cluster), key=lambda r: (_rank(r["uid"]), r["uid"], r["row"]))
        kept.update(r["row"] for r in members[:t])
    return kept


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    return _balance(tmp_path_factory.mktemp("balance"), "one")


def test_each_cluster_keeps_exactly_min_size_t(balanced):
    rows, facts = balanced
    assert len(rows) == sum(BLOBS) + 1
    clusters = {}
    for r in rows:
        clusters.setdefault(r["cluster"], []).append(r)
    assert sorted(len(c) for c in clusters.values()) == sorted([BLOBS[0], BLOBS[1] + 1, BLOBS[2]])
    for members in clusters.values():
        assert len({r["blob"] for r in members}) == 1  # k-means found the blobs
        assert {r["size"] for r in members} == {len(members)}
        kept = [r for r in members if r["status"] == "kept"]
        assert len(kept) == min(len(members), T)
        assert {r["reason"] for r in members if r["status"] == "dropped"} <= {"balance:semantic_cap"}
    assert facts["clusters"] == 3 and facts["capped_clusters"] == 2 and facts["largest_cluster"] == BLOBS[2]
    assert facts["kept"] == BLOBS[0] + 2 * T and facts["dropped"] == len(rows) - facts["kept"]


def test_kept_are_the_t_smallest_keyed_hashes(balanced):
    rows, _ = balanced
    assert {r["row"] for r in rows if r["status"] == "kept"} == _expected_kept(rows)
    assert _rank("abc", 3) == cap.rank_key("abc", 3)


def test_same_decisions_on_other_batch_splits_and_two_workers(balanced, tmp_path, crossings):
    rows, facts = balanced
    split = _balance(tmp_path, "seven", size=7)
    assert crossings == []  # batches waited parked, joined by batch id: none was held or shuffled
    two = _balance(tmp_path, "two", "--direct_num_workers", "2", "--direct_running_mode", "multi_processing",
                   size=13)
    for other, other_facts in (split, two):
        assert other == rows and other_facts == facts


def test_empty_input_and_rows_without_embeddings(tmp_path):
    rows, facts = _balance(tmp_path, "empty", empty=True)
    assert rows == [] and facts["rows"] == 0 and facts["clusters"] == 0 and facts["kept"] == 0
    rows, facts = _balance(tmp_path, "bare", size=50, vectors=False)
    assert len(rows) == sum(BLOBS) + 1 and {r["status"] for r in rows} == {"kept"}
    assert {r["cluster"] for r in rows} == {None} and facts["without_embedding"] == len(rows)


def test_bad_flags_exit_2(tmp_path, capsys):
    for flags in (["--balance", "cluster"], ["--balance", "semantic"],  # no scoring model
                  ["--balance", "semantic", "--semantic_balance_t", "0"]):
        assert main(["--pipeline", "metaclip", *flags, "--output", str(tmp_path)]) == 2
    assert "--balance" in capsys.readouterr().err


def test_after_metaclip_on_text_embeddings_of_the_scoring_model(tmp_path):
    config, weights = write_tiny_model(str(tmp_path / "model"), name="tiny-clip", seed=11)
    stats = run_curate("--pipeline", "metaclip", "--clip_model", config, "--clip_pretrained", weights,
                       "--device", "cpu", "--torch_threads", "1", "--balance", "semantic",
                       "--semantic_balance_embedding", "text", "--semantic_balance_clusters", "4",
                       "--semantic_balance_t", "5", output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    facts = stats["stages"]["Balance"]
    # 4 clusters asked, as many as the training sample supports at 39 rows each (clusters/kmeans.py)
    assert facts["embedding"] == "clip_text_embedding" and facts["clusters"] == min(4, facts["training_sample"] // 39)
    reached = ledger[ledger.semantic_cluster.notna()]
    assert len(reached) == facts["rows_clustered"] == ledger.clip_score.notna().sum() - ledger.reason.str.startswith(
        "dedup:").sum()
    assert reached.reason.dropna().eq("balance:semantic_cap").all() and (ledger.reason == "metaclip:balanced_out").any()
    per_cluster = reached.groupby("semantic_cluster").agg(n=("uid", "size"), size=("semantic_cluster_size", "max"),
                                                          kept=("status", lambda s: (s == "kept").sum()))
    assert (per_cluster.n == per_cluster["size"]).all() and (per_cluster.kept == per_cluster.n.clip(upper=5)).all()
    rows = [{"cluster": c, "uid": u, "row": i} for i, (c, u) in enumerate(zip(reached.semantic_cluster, reached.uid))]
    assert set(reached.uid[reached.status == "kept"]) == {rows[i]["uid"] for i in _expected_kept(rows, 5)}
    assert ledger.uid[ledger.status == "kept"].is_unique
    assert stats["kept"] == (ledger.status == "kept").sum() and os.path.isdir(tmp_path / "out" / "shards")

