"""SemDeDup on a constructed embedding set (exact expectations), in Beam, and end to end."""
import apache_beam as beam
import numpy as np
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from curate.dedup import semdedup
from curate.dedup.keys import KEY_DTYPE
from curate.dedup.options import DedupSettings
from curate.clusters.kmeans import normalize
from curate.clusters.transforms import BottomK
from curate.dedup.semantic_stage import SemanticDedup
from tests.conftest import read_ledger, run_curate
from tests.test_dedup_fixtures import training_items, write_shards

EPS = 0.02
D = 32


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def constructed(seed=0, clusters=4, per_cluster=30, twins=8):
    """Well-separated clusters of distinct points, plus a near-identical twin of some points.

    Returns keys, fp16 embeddings and the set of (twin pair) index pairs: exactly one of each
    pair must go, nothing else.
    """
    rng = np.random.default_rng(seed)
    centers = _unit(rng.normal(size=(clusters, D))) * 4
    points = _unit(np.repeat(centers, per_cluster, axis=0) + rng.normal(size=(clusters * per_cluster, D)))
    cos = points @ points.T
    assert cos[np.triu_indices(len(points), 1)].max() < 1 - 3 * EPS  # distinct points stay apart
    originals = rng.choice(len(points), twins * clusters, replace=False)
    twin = _unit(points[originals] + 0.02 * rng.normal(size=(len(originals), D)) / np.sqrt(D))
    emb = np.concatenate([points, twin]).astype(np.float16)
    n = len(emb)
    keys = np.zeros(n, KEY_DTYPE)
    keys["uid"] = [b"%032x" % v for v in rng.permutation(10 * n)[:n]]
    keys["score"] = rng.random(n).astype(np.float32)
    pairs = {(int(o), len(points) + k) for k, o in enumerate(originals)}
    return keys, emb, pairs


def _split(keys, emb, batch):
    keys = keys.copy()
    keys["batch"] = [b"00000-%010d" % (i // batch) for i in range(len(keys))]
    keys["pos"] = np.arange(len(keys)) % batch
    return [(keys[i:i + batch], emb[i:i + batch]) for i in range(0, len(keys), batch)], keys


def test_dedup_cluster_drops_one_of_each_twin_pair_and_nothing_else():
    keys, emb, pairs = constructed(clusters=1)
    keys["batch"], keys["pos"] = b"b", np.arange(len(keys))
    centroid = normalize(emb.astype(np.float32).mean(0, keepdims=True))[0]
    for keep in ("nearest_centroid", "best_score"):
        drops = semdedup.dedup_cluster(keys, emb, centroid, EPS, keep)
        dropped = {int(p) for p in drops["pos"]}
        assert len(dropped) == len(pairs) and all(len(dropped & set(p)) == 1 for p in pairs)
        for d in drops:
            (a, b), = [p for p in pairs if int(d["pos"]) in p]
            winner = b if int(d["pos"]) == a else a
            assert d["keeper"] == keys["uid"][winner] and 0 <= d["distance"] < EPS
            e = normalize(emb[[winner, int(d["pos"])]])
            assert d["distance"] == pytest.approx(1 - float(e[0] @ e[1]), abs=1e-5)
            if keep == "best_score":
                assert keys["score"][winner] > keys["score"][int(d["pos"])]
            else:
                assert e[0] @ centroid >= e[1] @ centroid


def test_a_row_close_only_to_a_dropped_row_is_kept(monkeypatch):
    a = _unit(np.r_[1.0, np.zeros(D - 1)])
    b = _unit(a + np.r_[0, 0.15, np.zeros(D - 2)])
    c = _unit(b + np.r_[0, 0.15, np.zeros(D - 2)])  # a~b and b~c within eps, a and c not
    emb = np.stack([a, b, c]).astype(np.float16)
    keys = np.zeros(3, KEY_DTYPE)
    keys["batch"], keys["pos"], keys["uid"] = b"b", [0, 1, 2], [b"%032x" % i for i in (3, 2, 1)]
    keys["score"] = [0.9, 0.5, 0.1]
    eps = 0.015
    cos = emb.astype(np.float32) @ emb.astype(np.float32).T
    assert cos[0, 1] > 1 - eps and cos[1, 2] > 1 - eps and cos[0, 2] < 1 - eps
    drops = semdedup.dedup_cluster(keys, emb, a, eps, "best_score")
    assert drops["pos"].tolist() == [1] and drops["keeper"][0] == keys["uid"][0]


def test_block_size_does_not_change_the_answer(monkeypatch):
    keys, emb, _ = constructed(clusters=1, per_cluster=60, twins=20)
    keys["batch"], keys["pos"] = b"b", np.arange(len(keys))
    centroid = normalize(emb.astype(np.float32).mean(0, keepdims=True))[0]
    whole = semdedup.dedup_cluster(keys, emb, centroid, EPS, "nearest_centroid")
    monkeypatch.setattr(semdedup, "BLOCK", 7)
    monkeypatch.setattr(semdedup, "KEPT_TILE", 5)
    tiled = semdedup.dedup_cluster(keys, emb, centroid, EPS, "nearest_centroid")
    assert np.array_equal(np.sort(whole), np.sort(tiled)) and len(whole) == 20


def test_training_sample_is_the_same_whatever_the_split():
    keys, emb, _ = constructed()
    combine = BottomK(25, seed=3)
    samples = []
    for batch in (7, 50):
        parts, _ = _split(keys, emb, batch)
        accs = [combine.add_input(combine.create_accumulator(), p) for p in parts]
        samples.append(combine.extract_output(combine.merge_accumulators(accs[::-1])))
    assert samples[0].pool == samples[1].pool == len(keys)
    assert np.array_equal(samples[0].uids, samples[1].uids) and len(samples[0].uids) == 25
    assert np.array_equal(samples[0].embeddings, samples[1].embeddings)


@pytest.mark.parametrize("batch", [9, 64])
def test_semantic_stage_in_beam_drops_exactly_one_of_each_twin(batch, tmp_path):
    keys, emb, pairs = constructed(per_cluster=40)  # 4 clusters need 4 x 39 training rows (clusters/kmeans.py)
    parts, keys = _split(keys, emb, batch)
    cfg = DedupSettings(semantic=True, semdedup_eps=EPS, semdedup_clusters=4, seed=1)
    expected_dropped_count = len(pairs)

    def check(drop_lists):
        rows = {(b, int(r["pos"])) for b, records in drop_lists for r in records}
        index = {(k["batch"].decode(), int(k["pos"])): i for i, k in enumerate(keys)}
        dropped = {index[r] for r in rows}
        assert len(dropped) == expected_dropped_count
        assert all(len(dropped & set(p)) == 1 for p in pairs)

    with beam.Pipeline(runner=FnApiRunner()) as p:
        drops, facts = p | beam.Create(parts) | SemanticDedup(cfg, str(tmp_path))
        assert_that(drops, check, label="Drops")
        assert_that(facts | beam.Map(lambda f: (f[0], f[1]["clusters"], f[1]["dropped"], f[1]["rows"])),
                    equal_to([("semantic", 4, len(pairs), len(keys))]), label="Facts")


def test_semdedup_end_to_end_with_the_scoring_stage_embeddings(tmp_path):
    from curate.models.tiny import write_tiny_model

    config, checkpoint = write_tiny_model(str(tmp_path / "model"), name="tiny-clip", seed=5)
    items = [it for it in training_items() if it[5] in (None, 0, 1)]
    shards = write_shards(str(tmp_path / "in"), items, shards=1)
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    leaked = next(it for it in items if it[0] == "u0")
    (eval_dir / "leaked.jpg").write_bytes(leaked[1])  # no caption: the eval set needs none
    eps = 0.002
    stats = run_curate("--pipeline", "dedup", "--input", shards, "--dedup", "url,semantic",
                       "--clip_model", config, "--clip_pretrained", checkpoint,
                       "--eval_images", str(eval_dir), "--eval_cosine", "0.999",
                       "--semdedup_eps", str(eps), "--batch_size", "8", output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    evaluated = stats["stages"]["Dedup"]["eval"]
    assert (evaluated["eval_items"], evaluated["eval_embeddings"], evaluated["eval_items_matched"]) == (1, 1, 1)
    assert set(ledger[ledger.reason == "dedup:eval_contamination"].name) == {"u0"}
    facts = stats["stages"]["Dedup"]["semantic"]
    assert facts["rows"] == len(items) - 1 and facts["embedding"] == "auto"
    semantic = ledger[ledger.reason == "dedup:semantic"]
    assert len(semantic) == facts["dropped"] > 0
    kept = ledger[ledger.status == "kept"]
    assert set(semantic.dedup_keeper) <= set(kept.uid)
    assert (semantic.dedup_distance < eps).all()
    assert kept.sha256.is_unique  # identical bytes embed identically: never both kept


def test_eval_cosine_drops_what_phash_misses():
    from curate.dedup.eval_set import EvalSet
    from curate.hashes.phash import phash
    from curate.dedup.signatures import EVAL_MATCHES, Signatures
    from curate.sample import Sample, SampleBatch
    from curate.stage import DROPPED
    from tests.test_dedup_fixtures import PHOTOS

    photos = [open(p, "rb").read() for p in PHOTOS[:3]]
    rng = np.random.default_rng(0)
    vectors = _unit(rng.normal(size=(3, D))).astype(np.float16)
    near = _unit(vectors[2].astype(np.float32) + 0.01 * rng.normal(size=D)).astype(np.float16)
    eval_set = EvalSet(["e-photo0", "e-vector2"], [None, "a cat"],
                       np.array([phash(photos[0]), 0x0F0F0F0F0F0F0F0F], dtype=np.uint64),
                       embeddings=np.stack([vectors[0], near]))
    samples = [Sample(uid=f"{i:032x}", image=photos[i], vectors={"clip_embedding": vectors[i]}) for i in range(3)]
    stage = Signatures(DedupSettings(url=False, sha=False, phash_radius=None, eval_images="x",
                                   eval_radius=0, eval_cosine=0.99))
    stage.setup()
    out = list(stage.process(SampleBatch("00000-0000000000", samples), eval_set))
    matches = [m for o in out if getattr(o, "tag", None) == EVAL_MATCHES for m in o.value]
    assert sorted((item, kind) for item, _, kind, _ in matches) == [(0, "phash"), (1, "embedding")]
    dropped = {row["uid"]: row for o in out if getattr(o, "tag", None) == DROPPED for row in o.value[1].to_pylist()}
    kept = [batch for batch in out if isinstance(batch, SampleBatch)]
    assert sorted(dropped) == [samples[0].uid, samples[2].uid] and [s.uid for s in kept[0]] == [samples[1].uid]
    assert dropped[samples[0].uid]["dedup_eval_item"] == "e-photo0" and dropped[samples[0].uid]["dedup_distance"] == 0
    cos = float(normalize(near[None])[0] @ normalize(vectors[2][None])[0])
    assert dropped[samples[2].uid]["dedup_eval_item"] == "e-vector2"
    assert dropped[samples[2].uid]["dedup_distance"] == pytest.approx(1 - cos, abs=1e-5)
    assert "dedup_eval_item" not in kept[0][0].values
