"""The reshard recipe: a subset applied to shards writes exactly its samples, bytes unchanged."""
from __future__ import annotations

import io
import json
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from curate.run import main
from curate.subset.__main__ import main as subset_main
from curate.subset.format import keys_to_hex, pairs_to_keys
from tests.conftest import read_ledger, run_curate
from tests.test_subset import datacomp_array


def tar_members(folder) -> dict[str, dict[str, bytes]]:
    """{key: {extension: bytes}} of every tar in a folder."""
    out: dict[str, dict[str, bytes]] = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".tar"):
            with tarfile.open(os.path.join(folder, name)) as tar:
                for member in tar.getmembers():
                    key, _, ext = member.name.partition(".")
                    out.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return out


def _uids_of(path) -> list[str]:
    return keys_to_hex(pairs_to_keys(np.load(path)))


def test_export_then_reshard_holds_exactly_the_kept_samples(default_run, tmp_path):
    out, _ = default_run
    assert subset_main(["export", str(out), "--to", str(tmp_path / "kept.npy")]) == 0
    kept = _uids_of(tmp_path / "kept.npy")
    original = tar_members(os.path.join(out, "shards"))
    in_shards = sorted(original)  # kept samples with an image (the others are in the curated URL list)
    assert set(in_shards) <= set(kept) and len(in_shards) > 20
    chosen = in_shards[::2]
    np.save(tmp_path / "half.npy", datacomp_array(chosen))
    new = tmp_path / "new"
    stats = run_curate("--pipeline", "reshard", "--input", os.path.join(out, "shards", "*.tar"),
                       "--subset", str(tmp_path / "half.npy"), "--shard_size", "7", output=new)
    members = tar_members(new / "shards")
    assert sorted(members) == chosen
    for uid, files in members.items():  # images and captions byte for byte
        image_ext = next(e for e in files if e not in ("txt", "json"))
        assert files[image_ext] == original[uid][image_ext] and files["txt"] == original[uid]["txt"]
        assert json.loads(files["json"])["uid"] == uid
    sizes = json.load(open(new / "shards" / "sizes.json"))
    assert sum(sizes.values()) == len(chosen) and len(sizes) == -(-len(chosen) // 7)
    assert all(os.path.exists(new / "shards" / f.replace(".tar", ".parquet")) for f in sizes)
    ledger = read_ledger(new)
    assert len(ledger) == len(in_shards) and ledger.uid.is_unique
    assert set(ledger.uid[ledger.status == "kept"]) == set(chosen)
    assert (ledger.reason[ledger.status == "dropped"] == "subset:not_in_subset").all()
    facts = stats["stages"]["Subset"]
    assert facts["matched_samples"] == len(chosen) and facts["subset_uids"] == len(chosen)
    # the new run exports the same subset, byte for byte
    assert subset_main(["export", str(new), "--to", str(tmp_path / "again.npy")]) == 0
    assert open(tmp_path / "again.npy", "rb").read() == open(tmp_path / "half.npy", "rb").read()


def _datacomp_shards(folder, n: int = 12) -> list[str]:
    """img2dataset/DataComp-style tars: numeric keys, the DataComp uid in each sample's json."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(5)
    uids = []
    for shard in range(2):
        with tarfile.open(os.path.join(folder, f"{shard:08d}.tar"), "w") as tar:
            for i in range(n // 2):
                uid = bytes(rng.integers(0, 256, 16, dtype=np.uint8)).hex()
                uids.append(uid)
                buffer = io.BytesIO()
                Image.new("RGB", (24, 24), tuple(int(c) for c in rng.integers(0, 256, 3))).save(buffer, "JPEG")
                meta = {"uid": uid, "url": f"http://example.com/{uid}.jpg", "caption": f"photo {uid[:6]}",
                        "key": f"{shard:04d}{i:05d}", "status": "success"}
                for ext, data in (("jpg", buffer.getvalue()), ("txt", meta["caption"].encode()),
                                  ("json", json.dumps(meta).encode())):
                    info = tarfile.TarInfo(f"{shard:04d}{i:05d}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return uids


def test_datacomp_shards_and_a_numpy_made_subset(tmp_path):
    uids = _datacomp_shards(tmp_path / "dc")
    chosen = sorted(uids[1::3])
    np.save(tmp_path / "dc.npy", datacomp_array(chosen + ["0" * 32]))  # one uid no shard has
    run_curate("--pipeline", "reshard", "--input", str(tmp_path / "dc"), "--subset", str(tmp_path / "dc.npy"),
               output=tmp_path / "out")
    original = {json.loads(files["json"])["uid"]: files for files in tar_members(tmp_path / "dc").values()}
    members = tar_members(tmp_path / "out" / "shards")
    assert sorted(members) == chosen  # named by the DataComp uid
    for uid, files in members.items():
        assert files["jpg"] == original[uid]["jpg"] and files["txt"] == original[uid]["txt"]


def test_a_subset_matching_nothing_is_counted(default_run, tmp_path, capsys):
    out, _ = default_run
    np.save(tmp_path / "none.npy", datacomp_array(["1" * 32, "2" * 32]))
    args = ["--pipeline", "reshard", "--input", os.path.join(out, "shards", "*.tar"),
            "--subset", str(tmp_path / "none.npy"), "--output", str(tmp_path / "o"), "--runner", "FnApiRunner"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    stats = json.load(open(tmp_path / "o" / "stats.json"))
    assert stats["kept"] == 0 and stats["dropped_by_reason"] == {"subset:not_in_subset": stats["inputs"]}
    assert stats["stages"]["Subset"]["matched_samples"] == 0 and stats["inputs"] > 0
    assert "subset:not_in_subset" in printed


@pytest.mark.parametrize("make, message", [
    (None, "--subset: the reshard recipe needs a subset"),
    (lambda p: np.save(p, np.arange(4)), "expected DataComp's"),
    (lambda p: np.save(p, datacomp_array(["1" * 32, "2" * 32])[::-1]), "is not sorted"),
    (lambda p: np.save(p, np.zeros(0, dtype="u8,u8")), "holds no uids"),
    (lambda p: open(p, "w").write("not numpy"), "cannot read"),
    (lambda p: None, "no such file"),
])
def test_bad_subsets_fail_before_the_run(default_run, make, message, tmp_path, capsys):
    out, _ = default_run
    args = ["--pipeline", "reshard", "--input", os.path.join(out, "shards", "*.tar"),
            "--output", str(tmp_path / "o")]
    if make is not None:
        make(str(tmp_path / "s.npy"))
        args += ["--subset", str(tmp_path / "s.npy")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not os.path.exists(tmp_path / "o")
