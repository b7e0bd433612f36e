"""Dedup by grouping (near_graph.py): band search, the two-hop keeper rule, the Beam transform."""
import numpy as np
import pytest

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from curate.dedup import bands, hamming
from curate.dedup import two_hop as H
from curate.dedup.keep import rank
from curate.dedup.keys import KEY_DTYPE
from tests.dedup_reference import find_duplicates
from curate.dedup.near_graph import FindNearDuplicates
from curate.dedup.options import DedupSettings

_SEEN: dict = {}


def _drop_sink(element):  # module-level: pickled by reference, so it fills this process's _SEEN
    _SEEN.setdefault("drops", []).append(element)


def _facts_sink(element):
    _SEEN.setdefault("facts", []).append(element)


def _run(batches, cfg, per_part):
    """The transform on FnApiRunner: (drop records, facts)."""
    _SEEN.clear()
    with beam.Pipeline(runner=FnApiRunner()) as p:
        drops, facts = (p | beam.Create(batches, reshuffle=False) | FindNearDuplicates(cfg, per_part))
        drops | "Drops" >> beam.Map(_drop_sink)
        facts | "Facts" >> beam.Map(_facts_sink)
    parts = [arr for batch, arr in _SEEN.get("drops", []) if (arr["batch"] == batch.encode()).all()]
    assert len(parts) == len(_SEEN.get("drops", []))  # each element names its batch
    (name, facts), = _SEEN["facts"]
    assert name == "near"
    return np.concatenate(parts) if parts else np.zeros(0, H.DROP_DTYPE), facts


def _as_set(drops):
    return {(r["batch"], int(r["pos"]), r["reason"], r["keeper"], float(r["distance"])) for r in drops}


def _batches(keys, size):
    return [keys[i:i + size] for i in range(0, len(keys), size)]


def _keys(n, rng, per_batch=7):
    keys = np.zeros(n, KEY_DTYPE)
    keys["batch"] = np.char.mod(b"b%05d", np.arange(n) // per_batch)
    keys["pos"] = np.arange(n) % per_batch
    keys["uid"] = np.char.mod(b"%032x", rng.permutation(n))
    keys["score"] = np.where(rng.random(n) < 0.2, np.nan, rng.random(n)).astype(np.float32)
    return keys


def _planted(n, radius, rng):
    """Random hashes, copies at 0..radius+2 bits, chains of copies of copies, a blank hash."""
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64) << np.uint64(1)
    copies = n // 3
    source = rng.integers(0, n - copies, copies)
    source[copies // 2:] = n - copies + np.arange(copies - copies // 2) - (copies - copies // 2)  # chains
    flips = rng.integers(0, radius + 3, copies)
    for k in range(copies):
        h = int(hashes[source[k]])
        for bit in rng.choice(64, flips[k], replace=False):
            h ^= 1 << int(bit)
        hashes[n - copies + k] = h
    hashes[:n // 10] = hashes[n // 10]  # one hash many times (a blank image)
    return hashes


def _reference(keys, url, sha, radius, keep):
    """The two-hop rule on a dense adjacency matrix (brute force)."""
    n = len(keys)
    adj = np.eye(n, dtype=bool)
    for field, on in (("url", url), ("sha", sha)):
        if on:
            col = keys[field]
            adj |= (col[:, None] == col[None, :]) & (col != b"")[:, None]
    if radius is not None:
        hp = keys["has_phash"]
        d = hamming.popcount(keys["phash"][:, None] ^ keys["phash"][None, :])
        adj |= hp[:, None] & hp[None, :] & (d <= radius)
    r = rank(keys, keep)
    big = np.iinfo(np.int64).max
    m1 = np.argmin(np.where(adj, r[None, :], big), axis=1)
    m2 = m1[np.argmin(np.where(adj, r[m1][None, :], big), axis=1)]
    lost = np.flatnonzero(m2 != np.arange(n))
    reasons, distance, _ = H.relation(keys[lost], keys[m2[lost]], url, sha, radius)
    kept = np.setdiff1d(np.arange(n), lost)
    assert not adj[np.ix_(kept, kept)][~np.eye(len(kept), dtype=bool)].any()  # an independent set
    return H.drop_records(keys[lost], keys[m2[lost]], reasons, distance)


@pytest.mark.parametrize("radius", [1, 2, 4, 6])
def test_band_search_equals_brute_force_with_chains_and_a_giant_bucket(radius, monkeypatch):
    rng = np.random.default_rng(radius)
    hashes = _planted(3000, radius, rng)
    base = int(hashes[0])  # a cluster of 300 distinct hashes within 2 bits of one: one big bucket
    near = {base ^ (1 << int(a)) ^ (1 << int(b)) for a, b in rng.integers(0, 64, (400, 2))}
    values = np.unique(np.r_[hashes, np.array(sorted(near), np.uint64)])
    monkeypatch.setattr(bands, "BIG_BUCKET", 64)  # the cluster's buckets take the FAISS path
    plan = bands.plan_bands(len(values), radius)
    a, b, largest = bands.bucket_pairs(*bands.entries(values, plan), plan)
    found = sorted(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist()))
    d = hamming.popcount(values[:, None] ^ values[None, :])
    i, j = np.nonzero(np.triu(d <= radius, 1))
    assert found == sorted(zip(values[i].tolist(), values[j].tolist()))  # each pair once
    assert largest > 64 and len(found) > 200


def test_band_plan_is_exact_for_every_layout():
    rng = np.random.default_rng(7)
    values = np.unique(_planted(1500, 3, rng))
    d = hamming.popcount(values[:, None] ^ values[None, :])
    truth = int(np.triu(d <= 3, 1).sum())
    for agree in (1, 2, 3):
        plan = bands.BandPlan(3, bands._masks(3 + agree), agree)
        a, _, _ = bands.bucket_pairs(*bands.entries(values, plan), plan)
        assert len(a) == truth, plan.describe()
    assert bands.plan_bands(10, 0) is None
    assert bands.plan_bands(1_000_000, 4).agree == 2  # 6 bands, keys of 21-22 bits


def _grouped(rng, shapes):
    """Keys whose duplicate groups are the given shapes (pairs, stars, cliques) of mixed kinds."""
    keys = _keys(sum(shapes) + 40, rng)
    keys["phash"] = rng.integers(0, 2**63, len(keys), dtype=np.uint64) << np.uint64(1)
    keys["has_phash"] = rng.random(len(keys)) < 0.9
    start = 0
    for g, size in enumerate(shapes):
        rows = np.arange(start, start + size)
        kind = g % 4
        if kind == 0:  # one URL (a clique)
            keys["url"][rows] = b"u%015d" % g
        elif kind == 1:  # same bytes (a clique)
            keys["sha"][rows] = b"s%015d" % g
        elif kind == 2:  # a pHash star: leaves 1-3 bits from the centre, 5+ from each other
            keys["has_phash"][rows] = True
            centre = int(keys["phash"][rows[0]])
            for k, row in enumerate(rows[1:]):
                keys["phash"][row] = centre ^ (0b111 << (3 * k)) if k < 20 else centre
        else:  # a URL pair whose second row also shares bytes with a third (diameter 2)
            keys["url"][rows[:2]] = b"v%015d" % g
            keys["sha"][rows[1:3]] = b"t%015d" % g
        start += size
    return keys


@pytest.mark.parametrize("keep", ["first_uid", "best_score"])
def test_two_hop_equals_union_find_on_pairs_stars_and_cliques(keep):
    rng = np.random.default_rng(11)
    keys = _grouped(rng, [2, 5, 6, 3, 2, 9, 4, 3, 2, 2, 7, 3])
    expected, union_facts = find_duplicates(keys, url=True, sha=True, phash_radius=3, keep=keep)
    assert _as_set(_reference(keys, True, True, 3, keep)) == _as_set(expected)
    got, facts = _run(_batches(keys, 7), DedupSettings(phash_radius=3, keep=keep), per_part=13)
    assert _as_set(got) == _as_set(expected)
    for name in ("rows", "dropped", "dropped_by_reason", "groups", "largest_group", "chained", "phash_rows"):
        assert facts[name] == union_facts[name], name


def test_transform_equals_the_reference_on_chains_whatever_the_split():
    rng = np.random.default_rng(5)
    keys = _keys(400, rng)
    keys["phash"], keys["has_phash"] = _planted(400, 3, rng), rng.random(400) < 0.95
    keys["url"][::40] = b"one-url-shared-a"  # a URL clique bridging pHash chains
    keys["sha"][200:260] = np.char.mod(b"%016d", np.arange(60) // 3)
    expected = _reference(keys, True, True, 3, "best_score")
    cfg = DedupSettings(phash_radius=3)
    got, facts = _run(_batches(keys, 7), cfg, per_part=50)
    assert _as_set(got) == _as_set(expected) and len(expected) > 100
    assert facts["chained"] > 0 and facts["largest_bucket"] >= 2
    shuffled = keys[rng.permutation(len(keys))]
    again, facts_again = _run(_batches(shuffled, 23), cfg, per_part=10_000)
    assert _as_set(again) == _as_set(expected) and facts_again == facts


def test_empty_pool_and_pool_without_hashes_give_zero_facts():
    cfg = DedupSettings(phash_radius=4)
    drops, facts = _run([], cfg, per_part=10)
    assert len(drops) == 0
    assert facts["rows"] == facts["dropped"] == facts["groups"] == facts["largest_group"] == 0
    assert facts["phash_rows"] == facts["largest_bucket"] == 0 and facts["dropped_by_reason"]["phash"] == 0
    keys = _keys(30, np.random.default_rng(1))
    keys["sha"][:3] = b"x" * 16
    drops, facts = _run(_batches(keys, 7), DedupSettings(phash_radius=0, keep="first_uid"), per_part=10)
    assert facts["rows"] == 30 and facts["phash_rows"] == 0 and facts["dropped"] == len(drops) == 2
    assert facts["index"] == "equal hashes only" and facts["largest_group"] == 3


@pytest.mark.parametrize("keep", ["first_uid", "best_score"])
def test_numeric_preference_is_keep_rank_order(keep):
    rng = np.random.default_rng(2)
    keys = _keys(500, rng)
    keys["uid"][::7] = keys["uid"][0]  # equal uids fall back to batch and position
    keys["score"][::5] = 0.5
    assert np.array_equal(np.lexsort(H.preference(keys, keep)), np.argsort(rank(keys, keep)))
