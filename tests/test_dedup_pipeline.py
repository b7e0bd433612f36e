"""The dedup recipe end to end on img2dataset-style shards of real photos and their copies."""
import json
import os

import pandas as pd
import pytest

from curate.hashes.phash import hamming
from tests.conftest import read_ledger, run_curate
from tests.http_fixture import IMAGES, http_server  # noqa: F401  (fixture)
from tests.test_dedup_fixtures import (EVAL_ONLY, EVAL_PHOTOS, EVAL_RADIUS, RADIUS, training_items,
                                  write_eval_folder, write_shards)

DECISION_COLUMNS = ["uid", "status", "reason", "dedup_keeper", "dedup_distance", "dedup_eval_item", "phash"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("dedup_corpus")
    items = training_items()
    return {"items": items, "shards": write_shards(str(root / "shards"), items),
            "eval": write_eval_folder(str(root / "eval"))}


def _args(corpus, *extra):
    return ("--pipeline", "dedup", "--input", corpus["shards"], "--phash_radius", str(RADIUS),
            "--eval_images", corpus["eval"], "--eval_radius", str(EVAL_RADIUS), *extra)


@pytest.fixture(scope="module")
def main_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("dedup_main")
    stats = run_curate(*_args(corpus), output=out)
    ledger = read_ledger(out)
    groups = {key: g for key, _, _, _, _, g in corpus["items"]}
    ledger["group"] = ledger.name.map(groups)
    return out, stats, ledger


def _bits(a, b):
    return hamming(int(a, 16), int(b, 16))


def test_eval_contamination_drops_planted_eval_images_and_reports_them(main_run):
    _, stats, ledger = main_run
    eval_items = {"eval-" + os.path.basename(p) for p in EVAL_PHOTOS}
    contaminated = ledger[ledger.reason == "dedup:eval_contamination"]
    # the planted photos' originals and byte copies certainly match; nothing unrelated does
    for key in ("g0-original", "g0-bytecopy", "g1-original", "g1-bytecopy"):
        assert key in set(contaminated.name)
    assert set(contaminated.group) <= {0, 1}
    assert set(contaminated.dedup_eval_item) == eval_items
    assert (contaminated.dedup_distance <= EVAL_RADIUS).all()
    facts = stats["stages"]["Dedup"]["eval"]
    assert facts["eval_items"] == 3 and facts["eval_items_matched"] == 2
    assert {m["eval_item"] for m in facts["matches"]} == eval_items
    assert "eval-" + os.path.basename(EVAL_ONLY) not in {m["eval_item"] for m in facts["matches"]}
    assert sum(m["training_samples"] for m in facts["matches"]) == len(contaminated)
    # every sample within the eval radius of an eval image is gone
    survivors = ledger[ledger.reason != "dedup:eval_contamination"]
    for matched in facts["matches"]:
        assert matched["closest"]["phash"] <= EVAL_RADIUS
    assert not survivors.name.isin(["g0-original", "g1-original"]).any()


def test_every_copy_collapses_to_one_keeper_and_unrelated_photos_stay(main_run):
    _, stats, ledger = main_run
    grouped = ledger[ledger.group.notna() & (ledger.reason != "dedup:eval_contamination")]
    for group, members in grouped.groupby("group"):
        kept = members[members.status == "kept"]
        assert len(kept) == 1, (group, members[["name", "reason"]])
        # --dedup_keep best_score (the default): the highest clip_score of the shards' json
        assert kept.clip_score.iloc[0] == members.clip_score.max()
        dropped = members[members.status == "dropped"]
        assert (dropped.dedup_keeper == kept.uid.iloc[0]).all()
        assert dropped.reason.isin(["dedup:url", "dedup:sha256", "dedup:phash"]).all()
    unrelated = ledger[ledger.group.isna()]
    assert len(unrelated) == 6 and (unrelated.status == "kept").all()
    assert stats["kept_in_shards"] == 6 + 8  # one per group outside the two contaminated ones


def test_dropped_rows_state_why_with_the_true_distance(main_run):
    _, _, ledger = main_run
    by_uid = ledger.set_index("uid")
    dropped = ledger[ledger.reason.isin(["dedup:url", "dedup:sha256", "dedup:phash"])]
    assert set(dropped.reason) == {"dedup:url", "dedup:sha256", "dedup:phash"}
    for row in dropped.itertuples():
        keeper = by_uid.loc[row.dedup_keeper]
        assert keeper.status == "kept"
        if row.reason == "dedup:sha256":
            assert row.sha256 == keeper.sha256 and row.dedup_distance == 0
        elif row.reason == "dedup:phash":
            assert row.sha256 != keeper.sha256
            assert row.dedup_distance == _bits(row.phash, keeper.phash)
    near = ledger.set_index("name")
    assert near.loc["g3-original"].status == "kept"  # the top score of its group
    assert near.loc["g3-sameurl"].reason == "dedup:url"
    assert near.loc["g4-bytecopy"].status == "kept" and near.loc["g4-original"].reason == "dedup:sha256"
    assert near.loc["g0-bytecopy"].phash == near.loc["g0-original"].phash


def test_shards_hold_the_kept_samples(main_run):
    out, stats, ledger = main_run
    sidecars = pd.concat(pd.read_parquet(os.path.join(out, "shards", f["shard"] + ".parquet"))
                         for f in stats["shards"])
    assert set(sidecars.key) == set(ledger[ledger.status == "kept"].uid)
    facts = stats["stages"]["Dedup"]["near"]
    assert facts["phash_radius"] == RADIUS and facts["dropped"] == sum(
        ledger.reason.isin(["dedup:url", "dedup:sha256", "dedup:phash"]))


@pytest.mark.parametrize("extra", [("--batch_size", "7"),
                                   ("--batch_size", "13", "--direct_num_workers", "2",
                                    "--direct_running_mode", "multi_processing")])
def test_same_decisions_whatever_the_bundle_split_and_worker_count(main_run, corpus, tmp_path, extra):
    _, _, ledger = main_run
    run_curate(*_args(corpus, *extra), output=tmp_path)
    other = read_ledger(tmp_path)
    pd.testing.assert_frame_equal(ledger[DECISION_COLUMNS], other[DECISION_COLUMNS])


def test_metaclip_recipe_dedups_the_bundled_images(default_run):
    out, stats = default_run
    ledger = read_ledger(out)
    facts = stats["stages"]["Dedup"]["near"]
    by_bytes = ledger[ledger.reason == "dedup:sha256"]
    assert len(by_bytes) == facts["dropped_by_reason"]["sha256"] > 0
    kept_images = ledger[(ledger.status == "kept") & ledger.sha256.notna()]
    assert kept_images.sha256.is_unique  # each bundled photo at most once
    assert set(by_bytes.dedup_keeper) <= set(kept_images.uid)
    assert (by_bytes.sha256.map(dict(zip(kept_images.uid, kept_images.sha256)).get) is not None)
    assert set(by_bytes.sha256) <= set(kept_images.sha256)


def test_eval_url_list_is_fetched_and_matched(http_server, tmp_path):
    from tests.image_variants import variants as copies_of

    eval_list = tmp_path / "eval.jsonl"
    eval_list.write_text("".join(json.dumps({"url": http_server.url(p), "caption": "eval"}) + "\n"
                                 for p in ("/img/eval.jpg", "/404/gone.jpg")))
    leaked = copies_of(IMAGES["jpg"], ["png"])["png"]  # the server's synthetic eval image, re-encoded
    items = [("leak", leaked, "png", "a leaked eval image", "http://x.example/leak.jpg", None)]
    items += [it for it in training_items() if it[0] in ("u0", "u1", "g0-original")]
    shards = write_shards(str(tmp_path / "in"), items, shards=1)
    stats = run_curate("--pipeline", "dedup", "--input", shards, "--eval_images", str(eval_list),
                       "--allow_private_addresses", "127.0.0.0/8", output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out").set_index("name")
    assert ledger.loc["leak"].reason == "dedup:eval_contamination"
    assert ledger.loc["leak"].dedup_eval_item == http_server.url("/img/eval.jpg")
    assert (ledger.drop(index="leak").status == "kept").all()
    facts = stats["stages"]["Dedup"]["eval"]
    assert (facts["eval_items"], facts["eval_unreadable"], facts["eval_items_matched"]) == (1, 1, 1)
    assert http_server.hits("/img/eval.jpg") == 1
