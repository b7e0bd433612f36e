"""Dedup building blocks on real photos and constructed data: pHash, search, union-find, keepers."""
import glob
import itertools
import os

import imagehash
import numpy as np
import pytest
from PIL import Image

from curate.dedup import hamming
from curate.dedup.components import components, keepers
from curate.dedup.keys import KEY_DTYPE, normalize_url, sha_digest, url_digest
from tests.dedup_reference import find_duplicates
from curate.dedup.options import DEFAULT_RADIUS
from curate.hashes.phash import hamming as bits_between
from curate.hashes.phash import phash
from tests.image_variants import variants
from tests.conftest import SAMPLE

PHOTOS = sorted(glob.glob(os.path.join(SAMPLE, "images", "*.jpg")))
# copies the benchmark table (benchmarks/README.md) shows within the default radius for every photo
CAUGHT_AT_DEFAULT = ("jpeg_q90", "jpeg_q50", "jpeg_q20", "png", "resize_50", "resize_25", "upscale_150",
                     "grayscale", "contrast_80", "saturation_150")


def _bytes(path):
    with open(path, "rb") as f:
        return f.read()


def test_phash_is_the_reference_phash():
    for path in PHOTOS:
        with Image.open(path) as im:
            im.draft("L", (64, 64))
            reference = imagehash.phash(im.convert("L"))
        assert f"{phash(_bytes(path)):016x}" == str(reference)


def test_phash_survives_reencoding_resizing_recolouring_but_separates_photos():
    hashes = [phash(_bytes(p)) for p in PHOTOS[:12]]
    for path, original in zip(PHOTOS[:12], hashes):
        for name, copy in variants(_bytes(path), CAUGHT_AT_DEFAULT).items():
            assert bits_between(phash(copy), original) <= DEFAULT_RADIUS, (path, name)
    unrelated = [bits_between(a, b) for a, b in itertools.combinations(hashes, 2)]
    assert min(unrelated) > 3 * DEFAULT_RADIUS


def test_phash_rejects_bytes_that_are_not_an_image():
    with pytest.raises(ValueError, match="decode_error"):
        phash(b"not an image at all")


def _brute_force_components(hashes, radius):
    n = len(hashes)
    d = hamming.popcount(hashes[:, None] ^ hashes[None, :])
    i, j = np.nonzero(np.triu(d <= radius, 1))
    return components(n, i, j)


def _same_partition(a, b):
    return len(set(zip(a.tolist(), b.tolist()))) == len(set(a.tolist())) == len(set(b.tolist()))


def _multihash(nhash, radius):
    return hamming.IndexPlan("multihash", nhash, 64 // nhash, radius // nhash)


@pytest.mark.parametrize("n,radius,plan", [
    (300, 0, None), (300, 3, None), (4000, 4, None), (2000, 6, hamming.IndexPlan("flat")),
    (2000, 6, _multihash(2, 6)), (2000, 6, _multihash(3, 6)), (2000, 6, _multihash(7, 6)),
])
def test_pairs_within_finds_every_pair_inside_the_radius(n, radius, plan):
    rng = np.random.default_rng(n + radius)
    hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) << np.uint64(1)
    planted = rng.integers(0, n // 2, size=n // 4)
    flips = np.zeros(len(planted), dtype=np.uint64)
    count = rng.integers(0, radius + 2, size=len(planted))  # some copies land just outside the radius
    for k in range(radius + 1):
        bit = np.uint64(1) << rng.integers(0, 64, size=len(planted)).astype(np.uint64)
        flips ^= np.where(count > k, bit, np.uint64(0))
    hashes[n - len(planted):] = hashes[planted] ^ flips
    hashes[:5] = hashes[5]  # identical values too
    i, j, d, used = hamming.pairs_within(hashes, radius, plan)
    assert (i < j).all() and (d <= radius).all()
    assert (d == hamming.popcount(hashes[i] ^ hashes[j])).all()
    assert _same_partition(components(n, i, j), _brute_force_components(hashes, radius))
    assert used == plan if plan else used == hamming.plan_index(len(np.unique(hashes)), radius)
    assert len(i) > n // 10


def test_union_find_matches_a_graph_search():
    rng = np.random.default_rng(3)
    n = 500
    i, j = rng.integers(0, n, 300), rng.integers(0, n, 300)
    labels = components(n, i, j)
    neighbours = {k: set() for k in range(n)}
    for a, b in zip(i.tolist(), j.tolist()):
        neighbours[a].add(b), neighbours[b].add(a)
    for start in range(n):
        seen, todo = {start}, [start]
        while todo:
            for nxt in neighbours[todo.pop()] - seen:
                seen.add(nxt), todo.append(nxt)
        assert {k for k in range(n) if labels[k] == labels[start]} == seen
    assert (labels == np.minimum.reduceat(np.arange(n), [0])[0]).sum() >= 1
    assert (keepers(labels, -np.arange(n))[labels == labels[0]] == np.flatnonzero(labels == labels[0]).max()).all()


def test_normalized_urls_collapse_spelling_variants_only():
    same = ["http://www.Example.com/a/b.jpg?x=1#frag", "https://example.com:443/a/b.jpg?x=1",
            "HTTPS://EXAMPLE.COM./a/b.jpg?x=1"]
    assert len({normalize_url(u) for u in same}) == 1
    different = ["https://example.com/a/B.jpg?x=1", "https://example.com/a/b.jpg?x=2",
                 "https://example.com:8080/a/b.jpg?x=1", "https://img.example.com/a/b.jpg?x=1"]
    assert len({normalize_url(u) for u in different + same[:1]}) == 5
    assert url_digest(None) == b"" and url_digest("http://[bad") != b""


def _keys(uids, urls=None, shas=None, hashes=None, scores=None):
    keys = np.zeros(len(uids), KEY_DTYPE)
    keys["batch"] = [b"00000-%010d" % (k // 3) for k in range(len(uids))]
    keys["pos"] = [k % 3 for k in range(len(uids))]
    keys["uid"] = [u.encode() for u in uids]
    keys["url"] = [url_digest(u) for u in urls] if urls else b""
    keys["sha"] = [sha_digest(s) for s in shas] if shas else b""
    if hashes is not None:
        keys["phash"] = [h or 0 for h in hashes]
        keys["has_phash"] = [h is not None for h in hashes]
    keys["score"] = scores if scores is not None else np.nan
    return keys


UIDS = [f"{k:032x}" for k in (9, 3, 7, 1, 5, 8)]


def test_exact_and_near_duplicates_name_keeper_reason_and_distance():
    keys = _keys(UIDS, urls=["http://a.com/x", "https://www.a.com/x", None, None, None, None],
                 shas=[None, None, "ab" * 32, "ab" * 32, None, None],
                 hashes=[None, None, 0xF0, 0xF0, 0xF1, 0xFFFF << 40])
    drops, facts = find_duplicates(keys, url=True, sha=True, phash_radius=2, keep="first_uid")
    got = {(r["uid_pos"] if False else (r["batch"], int(r["pos"]))): r for r in drops}
    by_uid = {UIDS[k]: (keys["batch"][k], int(keys["pos"][k])) for k in range(len(UIDS))}
    assert set(got) == {by_uid[UIDS[0]], by_uid[UIDS[2]], by_uid[UIDS[4]]}
    assert got[by_uid[UIDS[0]]]["reason"] == b"url" and got[by_uid[UIDS[0]]]["keeper"] == UIDS[1].encode()
    assert got[by_uid[UIDS[2]]]["reason"] == b"sha256" and got[by_uid[UIDS[2]]]["distance"] == 0
    phash_drop = got[by_uid[UIDS[4]]]
    assert phash_drop["reason"] == b"phash" and phash_drop["keeper"] == UIDS[3].encode()
    assert phash_drop["distance"] == 1
    assert facts["dropped"] == 3 and facts["groups"] == 2 and facts["largest_group"] == 3


def test_best_score_keeps_the_highest_score_and_rows_without_one_last():
    keys = _keys(UIDS[:4], shas=["cd" * 32] * 4, scores=np.array([0.2, np.nan, 0.9, 0.5], np.float32))
    drops, _ = find_duplicates(keys, url=False, sha=True, phash_radius=None, keep="best_score")
    assert set(drops["keeper"].tolist()) == {UIDS[2].encode()}
    keys["score"] = np.nan
    drops, _ = find_duplicates(keys, url=False, sha=True, phash_radius=None, keep="best_score")
    assert set(drops["keeper"].tolist()) == {min(UIDS[:4]).encode()}  # no scores: smallest uid


def test_decisions_do_not_depend_on_the_order_rows_arrive_in():
    rng = np.random.default_rng(0)
    hashes = [int(h) for h in rng.integers(0, 2**62, 60)]
    hashes[30:] = [h ^ (1 << int(b)) for h, b in zip(hashes[:30], rng.integers(0, 64, 30))]
    keys = _keys([f"{k:032x}" for k in rng.permutation(60)], hashes=hashes)
    first, _ = find_duplicates(keys, url=False, sha=False, phash_radius=3, keep="first_uid")
    again, _ = find_duplicates(keys[rng.permutation(60)], url=False, sha=False, phash_radius=3, keep="first_uid")
    assert len(first) >= 30 and np.array_equal(np.sort(first), np.sort(again))


@pytest.mark.parametrize("args,message", [
    (["--dedup", "exact,fuzzy"], "--dedup: unknown method 'fuzzy'"),
    (["--dedup_keep", "newest"], "--dedup_keep: 'newest' is not one of best_score, first_uid"),
    (["--phash_radius", "40"], "--phash_radius: must be between 0 and 16 bits, got 40"),
    (["--semdedup_eps", "1.5"], "--semdedup_eps: must be in (0, 1)"),
    (["--semdedup_keep", "farthest"], "--semdedup_keep: 'farthest' is not one of"),
    (["--dedup", "semantic"], "--dedup semantic: needs image embeddings"),
    (["--eval_images", "/nonexistent/eval"], "--eval_images: no such file or folder"),
])
def test_bad_dedup_flags_exit_2_with_one_line(args, message, tmp_path, capsys):
    from curate.run import main

    for recipe in ("dedup", "metaclip"):
        assert main(["--pipeline", recipe, *args, "--output", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()
