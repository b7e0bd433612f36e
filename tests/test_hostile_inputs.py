"""Hostile inputs (issue 13): bad data never crashes a run, corrupts a shard or loses a row.

Each case is built here, run through a real recipe on FnApiRunner, and checked for its exact
ledger rows (one per input, reasons as README "Inputs" documents), the other samples kept, and
every tar written read whole by `webdataset` with unique keys. Runs are shared per input kind.
"""
from __future__ import annotations

import io
import json
import os
import tarfile

import pandas as pd
import pytest

from curate.io.utf8 import escape_name
from curate.sample import make_uid
from tests.conftest import SAMPLE, read_ledger, run_curate
from tests.one_graph_cases import METADATA, csv_lines as _csv_lines, jsonl_lines as _jsonl_lines
from tests.http_fixture import http_server  # noqa: F401  (fixture)

PHOTOS = sorted(os.path.join(SAMPLE, "images", n) for n in os.listdir(os.path.join(SAMPLE, "images")))
CAFE = b"caf\xe9"  # latin-1 "café": not UTF-8


def photo(i: int) -> bytes:
    """A distinct real photo (no two are duplicates)."""
    with open(PHOTOS[i], "rb") as f:
        return f.read()


def fs_name(raw: bytes) -> str:
    return os.fsdecode(raw)  # how Python names the file (surrogateescape)


def read_shards(out) -> list[str]:
    """Every tar written, read whole by webdataset: its keys (each once) and as many as its sidecar."""
    import webdataset as wds

    folder = os.path.join(str(out), "shards")
    keys = []
    for name in sorted(n for n in os.listdir(folder) if n.endswith(".tar")) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name)
        with tarfile.open(path) as tar:
            members = tar.getnames()
        assert len(members) == len(set(members)), f"{name}: a member twice"
        got = [s["__key__"] for s in wds.WebDataset(path, shardshuffle=False).decode()]
        sidecar = pd.read_parquet(path[:-4] + ".parquet")
        assert len(got) == len(sidecar) and sorted(got) == sorted(sidecar["key"]), name
        for sample in wds.WebDataset(path, shardshuffle=False):
            json.loads(sample["json"])  # valid JSON, valid UTF-8
            sample["txt"].decode("utf-8")
        keys += got
    assert len(keys) == len(set(keys)), "a key in two shards"
    return keys


def rows(ledger: pd.DataFrame) -> set[tuple]:
    """(source_key, status, reason) of every ledger row; asserts none is there twice."""
    found = [(k, s, r if isinstance(r, str) else None)
             for k, s, r in zip(ledger["source_key"], ledger["status"], ledger["reason"])]
    assert len(found) == len(set(found)) and ledger["uid"].is_unique
    return set(found)


def kept_in_shards(out) -> set[str]:
    ledger = read_ledger(out)
    keys = read_shards(out)
    assert sorted(keys) == sorted(ledger.loc[ledger["status"] == "kept", "uid"])
    return set(keys)


# --- 1. non-UTF-8 file names: an image folder --------------------------------------------------

@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    inner = os.path.join(os.fsencode(root), b"imgs")
    os.makedirs(os.path.join(inner, b"sub\xff"))
    files = {CAFE + b".jpg": (photo(0), b"cake on a table"), b"ok.jpg": (photo(1), b"a dog on a beach"),
             b"sub\xff/x\x80y.jpg": (photo(2), b"a cat on a sofa")}
    for name, (image, caption) in files.items():
        with open(os.path.join(inner, name), "wb") as f:
            f.write(image)
        with open(os.path.join(inner, name[:-4] + b".txt"), "wb") as f:
            f.write(caption)
    out = root / "out"
    stats = run_curate("--pipeline", "dedup", "--input", fs_name(inner), output=out)
    return out, stats


def test_non_utf8_file_names_keep_an_escaped_key_and_their_image(folder_run):
    out, stats = folder_run
    ledger = read_ledger(out)
    assert rows(ledger) == {("caf\\xe9.jpg", "kept", None), ("ok.jpg", "kept", None),
                            ("sub\\xff/x\\x80y.jpg", "kept", None)}
    by_key = ledger.set_index("source_key")
    # the raw bytes are recoverable; the uid is the one of the name as read, on every run
    assert bytes.fromhex(by_key.loc["caf\\xe9.jpg", "source_key_bytes"]) == CAFE + b".jpg"
    assert bytes.fromhex(by_key.loc["sub\\xff/x\\x80y.jpg", "source_key_bytes"]) == b"sub\xff/x\x80y.jpg"
    assert by_key.loc["caf\\xe9.jpg", "uid"] == make_uid(fs_name(CAFE + b".jpg"), "cake on a table")
    assert by_key["source_key_bytes"].isna()["ok.jpg"]
    assert escape_name(fs_name(CAFE + b".jpg")) == "caf\\xe9.jpg"
    assert stats["kept_in_shards"] == 3 and kept_in_shards(out) == set(ledger["uid"])


# --- 1 and 6. tars: non-UTF-8 member names, a cut at a member boundary ----------------------

def _tar_bytes(samples: list[tuple[bytes, dict[str, bytes]]]) -> tuple[bytes, list[int]]:
    """A GNU tar (raw byte names, as GNU tar writes them) and the offset after each sample."""
    buffer, ends = io.BytesIO(), []
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tar:
        for key, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(fs_name(key) + "." + ext)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            ends.append(tar.offset)
    return buffer.getvalue(), ends


@pytest.fixture(scope="module")
def tar_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tars")
    os.makedirs(root / "in")
    names, _ = _tar_bytes([(CAFE, {"jpg": photo(3), "txt": b"cake with candles"}),
                           (b"plain", {"jpg": photo(4), "txt": b"a red bus"})])
    (root / "in" / "00000.tar").write_bytes(names)
    cut, ends = _tar_bytes([(b"a", {"jpg": photo(5), "txt": b"one dog"}),
                            (b"b", {"jpg": photo(6), "txt": b"two dogs"}),
                            (b"c", {"jpg": photo(7), "txt": b"three dogs"})])
    (root / "in" / "00001.tar").write_bytes(cut[:ends[1]])  # exactly at c's first header
    half, ends_half = _tar_bytes([(b"d", {"jpg": photo(8), "txt": b"a horse"})])
    (root / "in" / "00002.tar").write_bytes(half[:ends_half[0] + 512])  # one zero block of two
    out = root / "out"
    stats = run_curate("--pipeline", "dedup", "--input", str(root / "in"), output=out)
    return out, stats, ends[1], ends_half[0]


def test_non_utf8_tar_member_names_keep_an_escaped_key(tar_run):
    out = tar_run[0]
    ledger = read_ledger(out)
    by_key = ledger.set_index("source_key")
    assert by_key.loc["caf\\xe9", "status"] == "kept" and by_key.loc["plain", "status"] == "kept"
    assert bytes.fromhex(by_key.loc["caf\\xe9", "source_key_bytes"]) == CAFE
    assert by_key.loc["caf\\xe9", "uid"] == make_uid("00000.tar/" + fs_name(CAFE), "cake with candles")
    assert by_key.loc["caf\\xe9", "uid"] in kept_in_shards(out)


def test_tar_cut_at_a_member_boundary_is_reported_with_its_offset(tar_run):
    out, stats, cut_at, half_at = tar_run
    ledger = read_ledger(out)
    assert rows(ledger) == {
        ("caf\\xe9", "kept", None), ("plain", "kept", None),
        ("a", "kept", None), ("b", "kept", None),  # the samples before the cut
        (f"00001.tar:<unreadable at byte {cut_at}>", "dropped", "input:bad_tar"),
        ("d", "kept", None),
        (f"00002.tar:<unreadable at byte {half_at}>", "dropped", "input:bad_tar"),
    }
    bad = ledger[ledger["reason"] == "input:bad_tar"].set_index("source_key")
    extra = json.loads(bad.loc[f"00001.tar:<unreadable at byte {cut_at}>", "extra_json"])
    assert extra["tar_offset"] == cut_at and "end-of-archive marker missing" in extra["error"]
    assert stats["dropped_by_reason"] == {"input:bad_tar": 2}
    assert len(kept_in_shards(out)) == 5


# --- 3, 4, 5. bad lines in CSV, TSV and JSONL: input:bad_row, the rest curated, both graphs ---

def test_tsv_bad_lines_read_as_csv_ones(tmp_path):
    """TSV is CSV with tabs (one reader): the same rows, read without a run."""
    from curate.inputs import open_source

    data, reasons, kept_urls = _csv_lines("\t")
    path = tmp_path / "list.tsv"
    path.write_bytes(data)
    source = open_source(str(path))
    pairs = [pair for f in source.files for pair in source.read(f)]
    assert [r for _, r in pairs] == list(reasons.values())
    assert [s.source_key for s, r in pairs if r == "input:bad_row"] == [f"{path}:3", f"{path}:7"]
    assert [s.url for s, r in pairs if r is None] == kept_urls


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_bad_lines_become_bad_rows_and_the_rest_is_curated(tmp_path, fmt):
    data, reasons, kept_urls = _jsonl_lines() if fmt == "jsonl" else _csv_lines(",")
    path = tmp_path / f"list.{fmt}"
    path.write_bytes(data)
    metadata = tmp_path / "metadata.json"  # a few entries: the run spends no time building a matcher
    metadata.write_text(json.dumps(METADATA))
    args = ["--pipeline", "metaclip", "--input", str(path), "--download=false", "--t", "1000",
            "--metadata", str(metadata)]
    stats = run_curate(*args, output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    # one row per line; a bad line keyed by its file and line number (a CSV header is line 1)
    want = {(f"{path}:{n}" if r == "input:bad_row" else None, "kept" if r is None else "dropped", r)
            for n, r in reasons.items()}
    found = [(k if isinstance(k, str) else None, s, r if isinstance(r, str) else None)
             for k, s, r in zip(ledger["source_key"], ledger["status"], ledger["reason"])]
    assert len(found) == len(reasons) == stats["inputs"] and set(found) == want
    assert sorted(ledger.loc[ledger["status"] == "kept", "url"]) == kept_urls
    assert ledger["uid"].is_unique
    cleaned = ledger[ledger["reason"] == "input:non_utf8_caption"]["caption"]
    assert all("\ufffd" in c for c in cleaned)


# --- 2. the same row twice (the writer's rule: the later copy is input:duplicate_row) --------

def test_duplicate_rows_reach_a_shard_once_when_downloading(http_server, tmp_path):
    rows = [{"url": http_server.url("/img/a.jpg"), "caption": "a dog on a beach"}] * 2 + [
        {"url": http_server.url("/img/b.png"), "caption": "a cat on a sofa"},
        {"url": http_server.url("/img/\udc80.jpg"), "caption": "a bird"}]  # never fetched
    path = tmp_path / "list.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stats = run_curate("--pipeline", "download", "--input", str(path), "--dedup", "none",
                       "--allow_private_addresses", "127.0.0.0/8", "--download_retries", "0",
                       output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    found = sorted((u.rsplit("/", 1)[-1], s, r if isinstance(r, str) else "")
                   for u, s, r in zip(ledger["url"], ledger["status"], ledger["reason"]))
    assert found == [("a.jpg", "dropped", "input:duplicate_row"), ("a.jpg", "kept", ""),
                     ("b.png", "kept", ""), ("\ufffd.jpg", "dropped", "input:non_utf8_url")]
    assert stats["inputs"] == 4
    # the bad url never asked (robots.txt and TDMRep's file are the host's, asked once)
    assert set(http_server.state.hits) <= {"/img/a.jpg", "/img/b.png", "/robots.txt", "/.well-known/tdmrep.json"}
    assert len(kept_in_shards(tmp_path / "out")) == 2


def test_a_folder_table_with_bad_lines_and_impossible_file_names(tmp_path):
    """The pairs-table layout reads its table like a URL list: bad lines are rows, and a file name
    no file can have (a NUL, a lone surrogate) is a missing image, not a crash."""
    from curate.inputs import open_source

    (tmp_path / "a.jpg").write_bytes(photo(9))
    (tmp_path / "pairs.jsonl").write_bytes(b"\n".join([
        b'{"file": "a.jpg", "caption": "a dog"}', b'{"file": "b.jpg", "capt',
        b'{"file": "nul\\u0000.jpg", "caption": "a cat"}', b'{"file": "\\ud83d.jpg", "caption": "a bird"}',
        b'{"file": 7, "caption": "a horse"}']) + b"\n")
    source = open_source(str(tmp_path))
    pairs = [pair for f in source.files for pair in source.read(f)]
    table = str(tmp_path / "pairs.jsonl")
    assert [(s.source_key, r) for s, r in pairs] == [
        ("a.jpg", None), (f"{table}:2", "input:bad_row"), ("nul\x00.jpg", "input:missing_image"),
        ("\\xed\\xa0\\xbd.jpg", "input:missing_image"), ("7", "input:missing_image")]
    assert pairs[3][0].extras["source_key_bytes"] == b"\xed\xa0\xbd.jpg".hex()
