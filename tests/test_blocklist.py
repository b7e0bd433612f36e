"""Block lists without a pipeline: list files, the exact radius search, PDQ against Meta's hashes."""
from __future__ import annotations

import hashlib
import io
import os

import numpy as np
import pytest
from PIL import Image

from curate.blocklist.build import build_indexes, manifest_path
from curate.blocklist.check import BlockCheck, Match, url_key
from curate.blocklist.index import ListIndex, write_index
from curate.blocklist.lists import read_list
from curate.blocklist.options import BlockSettings, ListSpec
from curate.errors import UsageError
from curate.hashes.pdq import MIN_QUALITY, pdq
from curate.io import files as fs
from curate.run import main
from tests.conftest import SAMPLE

PDQ_DIR = os.path.join(os.path.dirname(__file__), "data", "pdq")
PUBLISHED = {  # Meta's hashes of its bridge test images (tests/data/pdq/README.md)
    "shrink-a-lot.jpg": "d0f8f1ccc0f4a84d0a370a3a228f67f0b36e2ed5b6623e1d33e6339c4e9c9b22",
    "square-128x128.jpg": "d8f8f1eec0f4a84f0e37022a078f63f0b36e2ed596621e1d33e6239c4e9c9b22",
}
_POP = np.array([bin(i).count("1") for i in range(256)])


def _bits(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_pdq_agrees_with_meta_published_hashes(name):
    with open(os.path.join(PDQ_DIR, name), "rb") as f:
        value, quality = pdq(f.read())
    assert quality >= 80
    assert _bits(value.hex(), PUBLISHED[name]) <= 10  # Meta's tolerance for a port; here it is 0


def _check(tmp_path, lists: dict[str, tuple[str, str]], **radius) -> BlockCheck:
    tmp_path.mkdir(parents=True, exist_ok=True)
    specs = []
    for name, (kind, text) in lists.items():
        path = tmp_path / f"{name}.txt"
        path.write_text(text)
        specs.append(ListSpec(name, kind, str(path)))
    out = str(tmp_path / "out")
    build_indexes(BlockSettings(tuple(specs), **radius), out)
    return BlockCheck(fs.read_bytes(manifest_path(out)))


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def test_every_kind_matches_the_bundled_photos_and_their_copies(tmp_path):
    photo_path = os.path.join(SAMPLE, "images", "000000000790.jpg")
    other_path = os.path.join(SAMPLE, "images", "000000012280.jpg")
    photo, other = open(photo_path, "rb").read(), open(other_path, "rb").read()
    with Image.open(io.BytesIO(photo)) as im:
        resized = _jpeg(im.convert("RGB").resize((im.width // 2, im.height // 2)), quality=60)
    photo_pdq, _ = pdq(photo)
    check = _check(tmp_path, {
        "iwf": ("md5", f"hash,quality\n{hashlib.md5(photo).hexdigest().upper()},100,extra\n"),
        "stanford": ("sha256", f"# a comment\n\n{hashlib.sha256(other).hexdigest()}\n"),
        "te": ("pdq", f"{photo_pdq.hex()},100\n"),
        "urls": ("url", "http://bad.example/a,b.jpg\n"),
        "urlhashes": ("url_md5", hashlib.md5(b"http://bad.example/c.jpg").hexdigest() + "\n"),
    })
    assert check.match_image(photo).match == Match("iwf", 0)  # the first list, in flag order
    assert check.match_image(other).match == Match("stanford", 0)
    verdict = check.match_image(resized)  # re-encoded and halved: not the same bytes, same picture
    assert verdict.match.list == "te" and 0 < verdict.match.distance <= 31
    assert len(verdict.pdq) == 64 and verdict.pdq_quality >= MIN_QUALITY
    unrelated = open(os.path.join(SAMPLE, "images", "000000020247.jpg"), "rb").read()
    assert check.match_image(unrelated).match is None
    assert check.match_url("http://bad.example/a,b.jpg") == Match("urls", 0)  # the whole line, commas too
    assert check.match_url("http://bad.example/c.jpg") == Match("urlhashes", 0)
    assert check.match_url("http://bad.example/a") is None and check.match_url(None) is None
    assert url_key("http://bad.example/c.jpg").hex() == hashlib.md5(b"http://bad.example/c.jpg").hexdigest()


def test_a_low_quality_pdq_never_matches(tmp_path):
    flat = _jpeg(Image.new("RGB", (200, 200), (120, 130, 140)))
    value, quality = pdq(flat)
    assert quality < MIN_QUALITY
    check = _check(tmp_path, {"te": ("pdq", value.hex() + "\n")})
    verdict = check.match_image(flat)
    assert verdict.match is None and verdict.pdq == value.hex() and verdict.pdq_quality == quality


def test_phash_lists_match_within_their_radius(tmp_path):
    from curate.hashes.phash import phash

    photo = open(os.path.join(SAMPLE, "images", "000000000790.jpg"), "rb").read()
    near = f"{phash(photo) ^ 0b111:016x}"  # 3 bits away
    assert _check(tmp_path / "r0", {"p": ("phash", near + "\n")}).match_image(photo).match is None
    assert _check(tmp_path / "r3", {"p": ("phash", near + "\n")}, phash_radius=3).match_image(photo).match == \
        Match("p", 3)


@pytest.mark.parametrize("width,radius", [(32, 31), (32, 15), (32, 47), (8, 4), (8, 9)])
def test_radius_search_is_exact_against_brute_force(tmp_path, width, radius):
    rng = np.random.default_rng(width * 100 + radius)
    rows = rng.integers(0, 256, (5000, width), dtype=np.uint8)
    # plant clusters: entries a few bits from each other, so answers sit near the radius
    bits = np.unpackbits(rows[:200], axis=1)
    for i, row in enumerate(bits):
        row[rng.choice(width * 8, int(rng.integers(1, radius + 3)), replace=False)] ^= 1
    rows = np.unique(np.vstack([rows, np.packbits(bits, axis=1)]).view(f"S{width}").ravel())
    rows = rows.view(np.uint8).reshape(-1, width)
    write_index(str(tmp_path), rows, True, {})
    index = ListIndex(str(tmp_path))
    hits = 0
    for _ in range(150):
        query = np.unpackbits(rows[rng.integers(len(rows))])
        query[rng.choice(width * 8, int(rng.integers(0, radius + 8)), replace=False)] ^= 1
        query = np.packbits(query)
        brute = int(_POP[rows ^ query].sum(axis=1).min())
        expected = brute if brute <= radius else None
        assert index.nearest(query, radius) == expected
        hits += expected is not None
    assert 20 < hits < 150  # both outcomes exercised


def test_list_files_are_parsed_strictly(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("md5,quality\n" + "A" * 32 + ",50\n" + "a" * 32 + "\n\n#note\n" + "0" * 32)
    rows, digest = read_list(ListSpec("good", "md5", str(good)))
    assert rows.shape == (2, 16) and digest == hashlib.sha256(good.read_bytes()).hexdigest()
    bad = tmp_path / "bad.csv"
    bad.write_text("a" * 32 + "\n" + "a" * 31 + "\n")
    with pytest.raises(UsageError, match=r"bad.csv: line 2: 'a{31}' is not a 32-character hex md5 hash"):
        read_list(ListSpec("bad", "md5", str(bad)))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert read_list(ListSpec("empty", "sha1", str(empty)))[0].shape == (0, 20)


@pytest.mark.parametrize("args,message", [
    (["--block_list", "crc:{f}"], "--block_list: 'crc:"),
    (["--block_list", "md5:{missing}"], "is not a file"),
    (["--block_list", "md5:{f}", "--block_list", "sha1:{f}"], "two lists are named 'list'"),
    (["--block_list", "pdq:{f}", "--block_pdq_radius", "64"], "--block_pdq_radius: must be 0..63"),
    (["--block_list", "md5:{bad}"], "line 2: 'xyz' is not a 32-character hex md5 hash"),
])
def test_bad_block_flags_exit_2_before_the_run(tmp_path, capsys, args, message):
    (tmp_path / "list.txt").write_text("a" * 32 + "\n")
    (tmp_path / "bad.txt").write_text("hash\nxyz\n")  # line 1: a header
    paths = {"f": tmp_path / "list.txt", "missing": tmp_path / "nope.txt", "bad": tmp_path / "bad.txt"}
    argv = [a.format(**paths) for a in args]
    assert main(["--pipeline", "dedup", *argv, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out" / "ledger").exists()
