"""The bundled default metaclip run end to end on FnApiRunner: ledger, shards, stats, determinism."""
import hashlib
import io
import json
import os
import tarfile

import pandas as pd
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from tests.conftest import SAMPLE, read_ledger, run_curate


def _input_rows():
    with open(os.path.join(SAMPLE, "pairs.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _file_digests(folder):
    return {name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(folder))}


def test_ledger_has_every_input_exactly_once(default_run):
    out, stats = default_run
    ledger = read_ledger(out)
    assert len(ledger) == len(_input_rows()) == stats["inputs"]
    assert ledger.uid.is_unique
    assert set(ledger.caption) == {r["caption"] for r in _input_rows()}
    assert set(ledger.status) == {"kept", "dropped"}
    assert ledger[ledger.status == "kept"].reason.isna().all()
    assert ledger[ledger.status == "dropped"].reason.notna().all()


def test_default_run_shows_every_metaclip_decision(default_run):
    out, stats = default_run
    ledger = read_ledger(out)
    reasons = ledger.reason.value_counts().to_dict()
    assert reasons.get("metaclip:no_match", 0) > 0 and reasons.get("metaclip:balanced_out", 0) > 0
    assert stats["kept"] > 0 and stats["kept_in_shards"] > 0 and stats["kept_as_urls"] > 0
    assert stats["dropped_by_reason"] == {k: v for k, v in reasons.items()}
    no_match = ledger[ledger.reason == "metaclip:no_match"]
    assert no_match.entry_ids.map(len).eq(0).all()
    matched = ledger[ledger.reason != "metaclip:no_match"]
    assert matched.entry_ids.map(len).gt(0).all()
    mc = stats["stages"]["MetaCLIP"]
    assert mc["pool"] == stats["inputs"] and mc["t"] >= 1
    assert "scaled" in mc["t_source"]


def test_extra_input_columns_are_carried(default_run):
    out, _ = default_run
    ledger = read_ledger(out)
    coco = ledger[ledger.source_key.notna()]
    assert coco.license_url.notna().all() and coco.flickr_url.notna().all()
    decoded = coco[coco.status == "kept"]
    assert len(decoded) and (decoded.src_width == decoded.width).all()  # the input's width, then ours
    assert (ledger[ledger.url.notna()].source == "laion400m").all()


def test_shards_read_back_with_webdataset(default_run):
    out, stats = default_run
    ledger = read_ledger(out)
    kept_images = set(ledger[(ledger.status == "kept") & ledger.source_key.notna()].uid)
    pattern = os.path.join(out, "shards", "{00000..%05d}.tar" % (len(stats["shards"]) - 1))
    seen = {}
    for sample in wds.WebDataset(pattern, shardshuffle=False).decode("pil"):
        meta = sample["json"]
        seen[sample["__key__"]] = meta
        assert sample["jpg"].size == (meta["width"], meta["height"])
        assert sample["txt"] == meta["caption"]
        assert meta["entry_ids"] and meta["status"] == "kept"
    assert set(seen) == kept_images
    sidecar = pd.read_parquet(os.path.join(out, "shards", "00000.parquet"))
    assert set(sidecar.key) <= kept_images and sidecar.key.is_unique
    sizes = json.load(open(os.path.join(out, "shards", "sizes.json")))
    assert sum(sizes.values()) == len(kept_images)


def test_shards_load_in_open_clip_training_loader(default_run):
    import argparse

    import open_clip
    from open_clip_train.data import get_wds_dataset
    from torchvision import transforms

    out, stats = default_run
    args = argparse.Namespace(
        train_data=os.path.join(out, "shards", "{00000..%05d}.tar" % (len(stats["shards"]) - 1)),
        train_num_samples=None, dataset_resampled=False, train_data_upsampling_factors=None,
        batch_size=8, workers=0, seed=0, world_size=1, rank=0)
    preprocess = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
    data = get_wds_dataset(args, preprocess, is_train=True, tokenizer=open_clip.get_tokenizer("ViT-B-32"))
    images, texts = next(iter(data.dataloader))
    assert images.shape == (8, 3, 32, 32) and texts.shape[0] == 8
    # the loader takes the sample count from shards/sizes.json, rounded up to whole batches
    assert data.dataloader.num_samples == -(-stats["kept_in_shards"] // 8) * 8


def test_curated_url_list_holds_kept_url_rows(default_run):
    out, stats = default_run
    urls = pd.read_parquet(os.path.join(out, "curated_urls"))
    ledger = read_ledger(out)
    kept_urls = ledger[(ledger.status == "kept") & ledger.url.notna()]
    assert sorted(urls.uid) == sorted(kept_urls.uid)
    assert len(urls) == stats["kept_as_urls"]


@pytest.fixture(scope="module")
def small_batches_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("small_batches")
    # 30: the bundle's 76 distinct photos (dedup keeps each once) still make several shards
    return out, run_curate("--batch_size", "37", "--samples_per_shard", "30", output=out)


def test_same_result_whatever_the_bundle_split(default_run, small_batches_run):
    a = read_ledger(default_run[0])
    b = read_ledger(small_batches_run[0])
    pd.testing.assert_frame_equal(a, b)


def test_same_shards_with_two_worker_processes(small_batches_run, tmp_path):
    out, stats = small_batches_run
    assert len(stats["shards"]) > 1
    stats2 = run_curate("--batch_size", "37", "--samples_per_shard", "30", "--direct_num_workers", "2",
                        "--direct_running_mode", "multi_processing", output=tmp_path)
    assert _file_digests(os.path.join(out, "shards")) == _file_digests(os.path.join(tmp_path, "shards"))
    pd.testing.assert_frame_equal(read_ledger(out), read_ledger(tmp_path))
    assert stats2["shards"] == stats["shards"]


def test_other_seed_other_sample(default_run, tmp_path):
    run_curate("--seed", "1", output=tmp_path)
    a, b = read_ledger(default_run[0]), read_ledger(tmp_path)
    assert (a.status != b.status).any()
    assert (a.reason == "metaclip:no_match").equals(b.reason == "metaclip:no_match")


def test_rerun_into_same_output_leaves_no_duplicates(tmp_path):
    first = run_curate("--samples_per_shard", "25", output=tmp_path)  # 76 distinct photos: 4 shards
    assert len(first["shards"]) > 2
    (tmp_path / "shards" / "00001.tar.tmp-deadbeef").write_bytes(b"partial")  # an interrupted write
    second = run_curate(output=tmp_path)
    files = sorted(os.listdir(tmp_path / "shards"))
    assert files == ["00000.parquet", "00000.tar", "00000_stats.json", "sizes.json"]
    assert second["kept"] == first["kept"]
    assert len(read_ledger(tmp_path)) == second["inputs"]


def test_parquet_output_format(tmp_path):
    stats = run_curate("--output_format", "parquet", output=tmp_path)
    table = pq.read_table(tmp_path / "shards" / "00000.parquet")
    assert table.num_rows == stats["kept_in_shards"]
    from PIL import Image

    row = table.slice(0, 1).to_pylist()[0]
    assert row["key"] == row["uid"]
    assert Image.open(io.BytesIO(row["jpg"])).size == (row["width"], row["height"])
    assert not any(f.endswith(".tar") for f in os.listdir(tmp_path / "shards"))


def test_shard_tar_members_are_reproducible(default_run):
    out, _ = default_run
    with tarfile.open(os.path.join(out, "shards", "00000.tar")) as tar:
        members = tar.getmembers()
    assert all(m.mtime == 0 for m in members)
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: (n.split(".")[0], ["jpg", "txt", "json"].index(n.split(".")[1])))
