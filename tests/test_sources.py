"""Input sources: URL lists in every format, image folders, WebDataset tars; bad rows become ledger rows."""
import io
import json
import os
import tarfile

import pandas as pd
import pytest

from curate.errors import UsageError
from curate.inputs import open_source
from tests.conftest import SAMPLE, read_ledger, run_curate

ROWS = [
    {"URL": "http://a.example/1.jpg", "TEXT": "a dog on a beach", "license": "cc-by", "n": 1},
    {"URL": "http://a.example/2.jpg", "TEXT": "", "license": "cc0", "n": 2},
    {"URL": None, "TEXT": "a cat", "license": None, "n": 3},
    {"URL": "http://a.example/4.jpg", "TEXT": None, "license": "x", "n": 4},
]


def _write(tmp_path, fmt, rows=ROWS):
    path = tmp_path / f"list.{fmt}"
    df = pd.DataFrame(rows)
    if fmt == "parquet":
        df.to_parquet(path)
    elif fmt in ("csv", "tsv"):
        df.to_csv(path, sep="," if fmt == "csv" else "\t", index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _read_all(source):
    return [pair for f in source.files for pair in source.read(f)]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv", "jsonl"])
def test_url_list_formats_with_img2dataset_column_names(tmp_path, fmt):
    source = open_source(_write(tmp_path, fmt))
    assert (source.url_col, source.caption_col) == ("URL", "TEXT")
    pairs = _read_all(source)
    # CSV cannot tell an empty cell from a missing one
    empty = "input:missing_caption" if fmt in ("csv", "tsv") else "input:empty_caption"
    assert [r for _, r in pairs] == [None, empty, "input:missing_url", "input:missing_caption"]
    first = pairs[0][0]
    assert first.url == ROWS[0]["URL"] and first.caption == ROWS[0]["TEXT"]
    assert first.extras["license"] == "cc-by" and str(first.extras["n"]) == "1"
    assert len({s.uid for s, _ in pairs}) == len(ROWS)


def test_explicit_columns_and_unknown_columns(tmp_path):
    path = _write(tmp_path, "parquet")
    source = open_source(path, url_col="URL", caption_col="license", explicit_cols=(True, True))
    assert source.caption_col == "license"
    with pytest.raises(UsageError, match="--caption_col: no column 'nope'"):
        open_source(path, caption_col="nope", explicit_cols=(False, True))
    with pytest.raises(UsageError, match="--url_col"):
        open_source(_write(tmp_path, "csv", [{"link": "x", "caption": "y"}]))


def test_bad_jsonl_lines_and_non_utf8_captions_become_rows(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"url": "http://x/1", "caption": "fine caption"}\n'
                     b'not json at all\n'
                     b'{"url": "http://x/2", "caption": "caf\xe9 latin-1"}\n'
                     b'[1, 2]\n')
    pairs = _read_all(open_source(str(path)))
    assert [r for _, r in pairs] == [None, "input:bad_row", "input:non_utf8_caption", "input:bad_row"]
    assert pairs[2][0].caption == "caf\ufffd latin-1"


def _tar(path, samples):
    with tarfile.open(path, "w") as tar:
        for key, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_webdataset_tars_by_brace_pattern_glob_and_folder(tmp_path):
    jpg = open(os.path.join(SAMPLE, "images", "000000000790.jpg"), "rb").read()
    meta = json.dumps({"url": "http://x/1.jpg", "key": "000000001", "status": "success", "width": 640}).encode()
    folder = tmp_path / "i2d"
    folder.mkdir()
    _tar(folder / "00000.tar", [("000000001", {"jpg": jpg, "txt": b"a family with cake", "json": meta}),
                                ("000000002", {"jpg": jpg, "txt": b"\xff\xfe bad"})])
    _tar(folder / "00001.tar", [("000000003", {"txt": b"no image here"})])
    for pattern in (str(folder / "{00000..00001}.tar"), str(folder / "*.tar"), str(folder)):
        source = open_source(pattern)
        assert len(source.files) == 2
    pairs = _read_all(source)
    assert [r for _, r in pairs] == [None, "input:non_utf8_caption", "input:missing_image"]
    first = pairs[0][0]
    assert first.url == "http://x/1.jpg" and first.source_key == "000000001"
    assert first.extras["status"] == "success" and first.extras["source_shard"] == "00000.tar"
    assert source.extra_columns()["src_width"].equals(__import__("pyarrow").int64())


def test_truncated_tar_keeps_what_was_read(tmp_path):
    jpg = open(os.path.join(SAMPLE, "images", "000000000790.jpg"), "rb").read()
    path = tmp_path / "cut.tar"
    _tar(path, [("a", {"jpg": jpg, "txt": b"one dog"}), ("b", {"jpg": jpg, "txt": b"two dogs"})])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 700])
    pairs = _read_all(open_source(str(path)))
    assert pairs[0][1] is None and pairs[-1][1] == "input:bad_tar"


def test_image_folder_with_txt_captions_and_corrupt_image(tmp_path):
    jpg = open(os.path.join(SAMPLE, "images", "000000000790.jpg"), "rb").read()
    (tmp_path / "00000").mkdir()
    (tmp_path / "00000" / "a.jpg").write_bytes(jpg)
    (tmp_path / "00000" / "a.txt").write_text("a dog and a cat at a table")
    (tmp_path / "00000" / "b.jpg").write_bytes(jpg[:2000])  # truncated
    (tmp_path / "00000" / "b.txt").write_text("a dog and a cat at a table too")
    (tmp_path / "00000" / "c.png").write_bytes(b"not an image")
    (tmp_path / "00000" / "c.txt").write_text("a cat and a dog")
    (tmp_path / "00000" / "d.jpg").write_bytes(jpg)  # no caption
    out = tmp_path / "out"
    stats = run_curate("--input", str(tmp_path / "00000"), "--t", "100", output=out)
    ledger = read_ledger(out).set_index("source_key")
    assert ledger.loc["a.jpg", "status"] == "kept"
    assert ledger.loc["b.jpg", "reason"] == "image:decode_error"
    assert ledger.loc["c.png", "reason"] == "image:decode_error"
    assert ledger.loc["d.jpg", "reason"] == "input:missing_caption"
    assert stats["inputs"] == 4 and stats["kept_in_shards"] == 1


def test_text_only_curation_of_a_url_list(tmp_path):
    import shutil

    src = tmp_path / "laion.parquet"
    rows = [json.loads(line) for line in open(os.path.join(SAMPLE, "pairs.jsonl"))][380:]
    pd.DataFrame([{"URL": r["url"], "TEXT": r["caption"], "row": i} for i, r in enumerate(rows)]).to_parquet(src)
    stats = run_curate("--input", str(src), "--download=false", output=tmp_path / "out")
    urls = pd.read_parquet(tmp_path / "out" / "curated_urls")
    assert len(urls) == stats["kept"] > 0 and stats["kept_in_shards"] == 0
    assert {"URL", "TEXT", "row", "uid", "entry_ids"} <= set(urls.columns)
    assert not (tmp_path / "out" / "shards").exists()
    shutil.rmtree(tmp_path / "out")
