"""ConvertImages: shards hold only images open_clip's loader reads (jpg, png, webp)."""
from __future__ import annotations

import glob
import hashlib
import io
import os
import tarfile

import pytest
import webdataset as wds
from PIL import Image

from curate.convert.stage import ConvertImages, encode
from curate.run import main
from curate.sample import Sample
from tests.conftest import read_ledger, run_curate


def _image(fmt: str, mode: str = "RGB", size=(40, 30), **save) -> bytes:
    image = Image.new(mode, size, (200, 30, 60, 128) if mode == "RGBA" else (200, 30, 60) if mode == "RGB" else 7)
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


@pytest.fixture
def folder(tmp_path):
    files = {"photo.jpg": _image("JPEG"), "logo.png": _image("PNG", "RGBA"), "anim.gif": _image("GIF", "P"),
             "scan.tiff": _image("TIFF"), "old.bmp": _image("BMP"), "sticker.tiff": _image("TIFF", "RGBA")}
    for name, data in files.items():
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_bytes(data)
        (tmp_path / "in" / (name.rsplit(".", 1)[0] + ".txt")).write_text(f"a picture called {name}")
    return tmp_path / "in", files


def _members(output) -> dict[str, bytes]:
    found = {}
    for path in glob.glob(os.path.join(str(output), "shards", "*.tar")):
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                found[m.name] = tar.extractfile(m).read()
    return found


def test_loadable_converts_what_open_clip_cannot_read_and_keeps_the_rest_byte_for_byte(folder, tmp_path):
    images, files = folder
    run_curate("--pipeline", "dedup", "--input", str(images), "--dedup", "none", "--convert_images", "loadable",
               output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out").set_index("source_key")
    members = _members(tmp_path / "out")
    by_file = {os.path.basename(k): row for k, row in ledger.iterrows()}
    assert set(by_file) == set(files) and (ledger["status"] == "kept").all()
    for name, row in by_file.items():
        image = [v for k, v in members.items() if k.startswith(row["uid"] + ".") and not k.endswith((".json", ".txt"))]
        assert len(image) == 1
        fmt = row["image_format"]
        assert members.get(f"{row['uid']}.{fmt}") == image[0] and fmt in ("jpg", "png", "webp")
        assert hashlib.sha256(image[0]).hexdigest() == row["sha256"]  # the ledger describes the shard's bytes
        with Image.open(io.BytesIO(image[0])) as decoded:
            assert decoded.size == (40, 30)
            if name == "sticker.tiff":  # transparency kept: PNG, not a flattened JPEG
                assert fmt == "png" and decoded.mode == "RGBA"
        if name in ("photo.jpg", "logo.png"):
            assert image[0] == files[name] and row["converted_from"] is None
        else:
            assert row["converted_from"] == {"anim.gif": "gif", "scan.tiff": "tiff", "old.bmp": "bmp",
                                             "sticker.tiff": "tiff"}[name]
    pattern = glob.glob(os.path.join(str(tmp_path / "out"), "shards", "*.tar"))
    loaded = list(wds.WebDataset(pattern, shardshuffle=False).decode("pil").rename(image="jpg;png;jpeg;webp"))
    assert len(loaded) == len(files)  # open_clip's rename finds an image in every sample


def test_a_target_format_converts_every_other_image_and_an_undecodable_one_is_dropped():
    stage = ConvertImages("webp", 80)
    good = Sample("a" * 32, image=_image("PNG", "RGBA"), image_format="png")
    same = Sample("b" * 32, image=_image("WEBP"), image_format="webp")
    broken = Sample("c" * 32, image=b"GIF89a not really", image_format="gif")
    assert stage.judge_batch([good, same, broken]) == [None, None, "decode_error"]
    assert good.image_format == "webp" and good.values["converted_from"] == "png"
    assert same.values == {} and broken.image_format == "gif"
    with pytest.raises(ValueError, match="decode_error"):
        encode(b"\x89PNG broken", "jpg", 95)


def test_a_bad_convert_flag_fails_before_the_run(tmp_path, capsys):
    assert main(["--pipeline", "dedup", "--convert_images", "bmp", "--output", str(tmp_path / "o")]) == 2
    assert "--convert_images: 'bmp' is not one of none, loadable, jpg, png, webp" in capsys.readouterr().err
