"""A blocked image's bytes are written nowhere a run keeps, during the run or after it.

Lists are built in the test from the bundled COCO photos and a re-encoded, halved copy. The
first run of each test fails at its very last step (stats.json), so everything it wrote on the
way (the download cache, parked batches and shard fragments under _spill/) is still there to
search; the second run completes into the same output. Every file of the output is searched
for a slice of each blocked image's bytes, and the same search finds the kept images' bytes
(so it would see a leak).
"""
from __future__ import annotations

import hashlib
import io
import json
import os

import pytest
from PIL import Image

import curate.io.outputs
from curate.hashes.pdq import pdq
from curate.run import main
from tests.conftest import SAMPLE, read_ledger, run_curate
from tests.http_fixture import http_server  # noqa: F401  (fixture)

PHOTOS = ["000000000790", "000000012280", "000000020247", "000000030213", "000000062554"]


def _photo(stem: str) -> bytes:
    with open(os.path.join(SAMPLE, "images", f"{stem}.jpg"), "rb") as f:
        return f.read()


def _caption(stem: str) -> str:
    with open(os.path.join(SAMPLE, "pairs.jsonl")) as f:
        return next(r["caption"] for r in map(json.loads, f) if r.get("file", "").endswith(f"{stem}.jpg"))


def _halved(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        out = io.BytesIO()
        im.convert("RGB").resize((im.width // 2, im.height // 2)).save(out, format="JPEG", quality=70)
        return out.getvalue()


def _needle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[middle:middle + 512]


def _files_holding(root, data: bytes) -> list[str]:
    needle, found = _needle(data), []
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                if needle in f.read():
                    found.append(os.path.relpath(os.path.join(folder, name), root))
    return found


@pytest.fixture
def lists(tmp_path):
    """md5 of photo 0 (ThreatExchange-style lines), PDQ of photo 1, and a URL list."""
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "iwf.csv").write_text(f"md5,severity\n{hashlib.md5(_photo(PHOTOS[0])).hexdigest()},A\n")
    (folder / "te.txt").write_text(f"{pdq(_photo(PHOTOS[1]))[0].hex()},100\n")
    return folder


def _flags(lists, *extra_lists) -> list[str]:
    return ["--block_list", f"md5:{lists / 'iwf.csv'}", "--block_list", f"pdq:{lists / 'te.txt'}", *extra_lists]


def _fail_at_stats(monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("stopped before stats.json, on purpose")
    monkeypatch.setattr(curate.io.outputs, "_write_stats", fail)


def test_blocked_images_from_a_folder_reach_no_file_of_the_run(tmp_path, lists, monkeypatch, capsys):
    images = tmp_path / "images"
    images.mkdir()
    blocked = {"exact.jpg": _photo(PHOTOS[0]), "halved.jpg": _halved(_photo(PHOTOS[1]))}
    kept = {f"{stem}.jpg": _photo(stem) for stem in PHOTOS[2:]}
    for name, data in {**blocked, **kept}.items():
        (images / name).write_bytes(data)
        stem = PHOTOS[0] if name == "exact.jpg" else PHOTOS[1] if name == "halved.jpg" else name[:-4]
        (images / name.replace(".jpg", ".txt")).write_text(_caption(stem))
    out = tmp_path / "out"
    args = ["--pipeline", "metaclip", "--input", str(images), *_flags(lists)]

    with monkeypatch.context() as patch:  # metaclip parks batches before balancing, dedup and shards
        _fail_at_stats(patch)
        with pytest.raises(Exception, match="on purpose"):
            run_curate(*args, output=out)
    assert (out / "_spill").is_dir()
    for data in kept.values():
        assert any(f.startswith("_spill") for f in _files_holding(out, data))  # the search sees bytes
    for name, data in blocked.items():
        assert _files_holding(out, data) == [], name

    assert main([*args, "--output", str(out), "--runner", "FnApiRunner"]) == 0
    summary = capsys.readouterr().out
    assert "safety: 2 sample(s) on block lists (iwf 1, te 1)" in summary
    assert "exact.jpg" not in summary and "halved" not in summary  # how many, never which
    for name, data in blocked.items():
        assert _files_holding(out, data) == [], name
    ledger = read_ledger(out).set_index("source_key")
    by_file = {os.path.basename(k): row for k, row in ledger.iterrows()}
    assert (by_file["exact.jpg"]["reason"], by_file["exact.jpg"]["block_list"],
            by_file["exact.jpg"]["block_distance"]) == ("safety:blocked", "iwf", 0)
    halved = by_file["halved.jpg"]
    assert halved["reason"] == "safety:blocked" and halved["block_list"] == "te" and 0 < halved["block_distance"] <= 31
    assert all(len(by_file[n]["pdq"]) == 64 and by_file[n]["pdq_quality"] >= 50 for n in kept)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["blocked_by_list"] == {"iwf": 1, "te": 1}


def test_blocked_downloads_are_never_fetched_or_cached(http_server, tmp_path, lists, monkeypatch):
    blobs = {"exact": _photo(PHOTOS[0]), "halved": _halved(_photo(PHOTOS[1])), "listed": _photo(PHOTOS[2]),
             "redirected": _photo(PHOTOS[3]), "fine": _photo(PHOTOS[4])}
    http_server.state.blobs.update(blobs)
    (lists / "urls.txt").write_text(http_server.url("/blob/listed") + "\n")
    (lists / "urlhashes.txt").write_text(hashlib.md5(http_server.url("/blob/redirected").encode()).hexdigest() + "\n")
    paths = ["/blob/exact", "/blob/halved", "/blob/listed", "/to_blob/redirected", "/blob/fine"]
    urls = tmp_path / "urls.jsonl"
    urls.write_text("".join(json.dumps({"url": http_server.url(p), "caption": f"photo {i}"}) + "\n"
                            for i, p in enumerate(paths)))
    out = tmp_path / "out"
    args = ["--pipeline", "download", "--input", str(urls), "--allow_private_addresses", "127.0.0.0/8",
            "--download_retries", "0", "--batch_size", "2",
            *_flags(lists, "--block_list", f"url:{lists / 'urls.txt'}",
                    "--block_list", f"url_md5:{lists / 'urlhashes.txt'}")]

    with monkeypatch.context() as patch:
        _fail_at_stats(patch)
        with pytest.raises(Exception, match="on purpose"):
            run_curate(*args, output=out)
    assert any(f.startswith("downloads") for f in _files_holding(out, blobs["fine"]))  # the cache keeps images
    for name in ("exact", "halved", "listed", "redirected"):
        assert _files_holding(out, blobs[name]) == [], name

    stats = run_curate(*args, output=out)  # resumes from the cache: nothing fetched twice
    for name in ("exact", "halved", "listed", "redirected"):
        assert _files_holding(out, blobs[name]) == [], name
    assert http_server.hits("/blob/listed") == http_server.hits("/blob/redirected") == 0  # never requested
    assert http_server.hits("/blob/exact") == http_server.hits("/blob/halved") == 1
    ledger = read_ledger(out)
    rows = {u.removeprefix(http_server.url("")): r for u, r in zip(ledger.url, ledger.to_dict("records"))}
    assert {p: (r["reason"], r["block_list"]) for p, r in rows.items()} == {
        "/blob/exact": ("safety:blocked", "iwf"), "/blob/halved": ("safety:blocked", "te"),
        "/blob/listed": ("safety:blocked", "urls"), "/to_blob/redirected": ("safety:blocked", "urlhashes"),
        "/blob/fine": (None, None)}
    assert rows["/to_blob/redirected"]["download_final_url"] == http_server.url("/blob/redirected")
    assert stats["blocked_by_list"] == {"iwf": 1, "te": 1, "urlhashes": 1, "urls": 1}
    assert stats["kept_in_shards"] == 1
