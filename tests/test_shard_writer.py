"""Shards assembled from fragments: contiguous names, exact sizes, one key once, same bytes anywhere."""
from __future__ import annotations

import io
import json
import os
import tarfile

import numpy as np
import pandas as pd
import pytest
import webdataset as wds
from PIL import Image

from tests.conftest import read_ledger, run_curate
from tests.test_runners import shard_bytes


def _png(i: int) -> bytes:
    """A distinct noise image (distinct pHash too, so dedup keeps all of them)."""
    pixels = np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).resize((64, 48), Image.NEAREST).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    for i in range(45):
        (root / f"img{i:03d}.png").write_bytes(_png(i))
        (root / f"img{i:03d}.txt").write_text(f"a photo of a dog number {i}")
    return root


ARGS = ("--pipeline", "dedup", "--batch_size", "7", "--samples_per_shard", "10")


def read_keys(tar_path: str) -> list[str]:
    return [s["__key__"] for s in wds.WebDataset(tar_path, shardshuffle=False)]


def test_shards_are_contiguous_and_exactly_sized(folder, tmp_path):
    stats = run_curate(*ARGS, "--input", str(folder), output=tmp_path)
    names = sorted(f for f in os.listdir(tmp_path / "shards") if f.endswith(".tar"))
    assert names == [f"{i:05d}.tar" for i in range(5)]
    counts = [len(read_keys(str(tmp_path / "shards" / n))) for n in names]
    assert counts == [10, 10, 10, 10, 5]
    sizes = json.loads((tmp_path / "shards" / "sizes.json").read_text())
    assert sizes == dict(zip(names, counts))
    keys = [k for n in names for k in read_keys(str(tmp_path / "shards" / n))]
    ledger = read_ledger(tmp_path)
    assert sorted(keys) == sorted(ledger.uid[ledger.status == "kept"]) and len(set(keys)) == 45
    for n in names:  # sidecar rows in tar order, images byte-identical to the input
        sidecar = pd.read_parquet(tmp_path / "shards" / n.replace(".tar", ".parquet"))
        assert list(sidecar.key) == read_keys(str(tmp_path / "shards" / n))
    by_key = {s["__key__"]: s for n in names for s in wds.WebDataset(str(tmp_path / "shards" / n), shardshuffle=False)}
    for row in ledger.itertuples():
        assert by_key[row.uid]["png"] == _png(int(os.path.basename(row.source_key)[3:6]))
    assert [s["count"] for s in stats["shards"]] == counts
    assert not (tmp_path / "_spill").exists()


def test_same_shard_bytes_on_two_worker_processes(folder, tmp_path):
    run_curate(*ARGS, "--input", str(folder), output=tmp_path / "one")
    run_curate(*ARGS, "--input", str(folder), "--direct_num_workers", "2",
               "--direct_running_mode", "multi_processing", output=tmp_path / "two")
    assert shard_bytes(tmp_path / "one") == shard_bytes(tmp_path / "two")


def test_parquet_shards_hold_the_images(folder, tmp_path):
    run_curate(*ARGS, "--input", str(folder), "--output_format", "parquet", output=tmp_path)
    shards = pd.concat([pd.read_parquet(tmp_path / "shards" / f) for f in sorted(os.listdir(tmp_path / "shards"))
                        if f.endswith(".parquet")])
    assert len(shards) == 45 and shards.key.is_unique
    images = {_png(i) for i in range(45)}
    assert set(shards.png) == images


def _tar_with_repeated_key(path, keys):
    with tarfile.open(path, "w") as tar:
        for n, key in enumerate(keys):
            for ext, data in (("png", _png(n)), ("txt", f"caption {key}".encode())):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_a_sample_listed_twice_reaches_a_shard_once(tmp_path):
    """Same shard and key twice = the same uid: the later row is input:duplicate_row, whatever --dedup says."""
    _tar_with_repeated_key(tmp_path / "00000.tar", ["a", "b", "a", "c"])
    run_curate("--pipeline", "dedup", "--dedup", "none", "--input", str(tmp_path / "00000.tar"),
               output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    assert len(ledger) == 4
    assert sorted(ledger.reason.fillna("kept")) == ["input:duplicate_row", "kept", "kept", "kept"]
    keys = read_keys(str(tmp_path / "out" / "shards" / "00000.tar"))
    assert len(keys) == 3 and len(set(keys)) == 3
    dup = ledger[ledger.reason == "input:duplicate_row"].iloc[0]
    assert dup.uid in keys  # the first copy (input order) is the one kept


def test_identical_url_rows_are_one_kept_row(tmp_path):
    rows = [{"url": "http://127.0.0.1:9/a.jpg", "caption": "a dog on a beach"}] * 2 + [
        {"url": "http://127.0.0.1:9/b.jpg", "caption": "a cat on a sofa"}]
    (tmp_path / "list.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    stats = run_curate("--pipeline", "metaclip", "--input", str(tmp_path / "list.jsonl"), "--download=false",
                       "--dedup", "none", "--t", "100", output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    assert len(ledger) == 3
    urls = pd.read_parquet(tmp_path / "out" / "curated_urls")
    assert urls.uid.is_unique
    assert stats["inputs"] == 3


@pytest.mark.parametrize("moment", ["fragments", "shards"])
def test_a_run_killed_while_writing_reruns_to_the_same_output(folder, tmp_path, moment):
    """kill -9 once fragments (or the first shard) exist, rerun into the same output: same files."""
    import signal
    import subprocess
    import sys
    import time

    args = [*ARGS, "--batch_size", "3", "--input", str(folder), "--runner", "FnApiRunner"]
    run_curate(*args[:-2], output=tmp_path / "clean")
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "curate.run", *args, "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watch = out / "_spill" / "fragments" if moment == "fragments" else out / "shards"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if watch.exists() and any(watch.iterdir()):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    run_curate(*args[:-2], output=out)
    assert shard_bytes(out) == shard_bytes(tmp_path / "clean")
    pd.testing.assert_frame_equal(read_ledger(out), read_ledger(tmp_path / "clean"))
    assert not (out / "_spill").exists()
    leftovers = [p for p in out.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_same_shard_bytes_on_portable_and_dask(folder, tmp_path):
    """The path Spark and Flink take (PortableRunner, LOOPBACK) and a 2-worker Dask cluster."""
    from dask.distributed import LocalCluster

    run_curate(*ARGS, "--input", str(folder), output=tmp_path / "fn")
    run_curate(*ARGS, "--input", str(folder), "--runner", "PortableRunner", "--job_endpoint", "embed",
               "--environment_type", "LOOPBACK", output=tmp_path / "portable")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        run_curate(*ARGS, "--input", str(folder), "--runner", "DaskRunner",
                   "--dask_client_address", cluster.scheduler_address, output=tmp_path / "dask")
    expected = shard_bytes(tmp_path / "fn")
    assert len(expected) == 10  # 5 tars, 5 sidecars
    assert shard_bytes(tmp_path / "portable") == expected
    assert shard_bytes(tmp_path / "dask") == expected
    pd.testing.assert_frame_equal(read_ledger(tmp_path / "dask"), read_ledger(tmp_path / "fn"))
