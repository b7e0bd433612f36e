"""Property-style: generated bad inputs never crash a run, lose a row or corrupt a shard.

Seeded cases (random bytes as images, random byte strings as captions and file names, random
truncation of tars and of list files), several per run: the run exits 0 (or refuses the input
with exit 2 before the pipeline: UsageError), every input is in the ledger once, every shard is
read whole by webdataset and no key is there twice.
"""
from __future__ import annotations

import io
import json
import os
import random
import tarfile

import pytest

from curate.errors import UsageError
from tests.conftest import read_ledger, run_curate
from tests.test_hostile_inputs import fs_name, photo, read_shards

SEEDS = (0, 1, 2, 3, 4)


def _name(rng: random.Random) -> bytes:
    """A random file name stem: any byte but NUL, '/' and '.' (not WebDataset's '__' metadata)."""
    allowed = [b for b in range(1, 256) if b not in b"/."]
    while True:
        name = bytes(rng.choice(allowed) for _ in range(rng.randint(1, 12)))
        if not name.startswith(b"__"):
            return name


def _image(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return photo(rng.randrange(40))
    if kind == 1:
        return photo(rng.randrange(40))[: rng.randint(0, 3000)]  # truncated
    return rng.randbytes(rng.randint(0, 400))  # random bytes, maybe empty


def _caption(rng: random.Random) -> bytes:
    return rng.choice([b"a dog on a beach", rng.randbytes(rng.randint(0, 40)), b"", b"caf\xe9 \xff"])


def _raw_key(row) -> bytes:
    """The raw name of a ledger row: its recorded bytes, else its (valid UTF-8) key."""
    raw = row["source_key_bytes"]
    return bytes.fromhex(raw) if isinstance(raw, str) else row["source_key"].encode()


def _run(*args, output) -> bool:
    """True when the run finished (exit 0); False when it refused the input first (exit 2)."""
    try:
        run_curate(*args, output=output)
        return True
    except UsageError:
        assert not os.path.exists(os.path.join(str(output), "ledger"))
        return False


def test_random_image_folders(tmp_path):
    root = os.path.join(os.fsencode(tmp_path), b"in")
    want = set()
    for seed in SEEDS:
        rng = random.Random(seed)
        folder = os.path.join(root, _name(rng))
        os.makedirs(folder, exist_ok=True)
        for _ in range(4):
            stem = _name(rng) + rng.choice([b".jpg", b".png", b".JPG"])
            path = os.path.join(folder, stem)
            if os.path.exists(path):
                continue
            with open(path, "wb") as f:
                f.write(_image(rng))
            if rng.random() < 0.8:
                with open(os.path.splitext(path)[0] + b".txt", "wb") as f:
                    f.write(_caption(rng))
            want.add(os.path.relpath(path, root))
    assert _run("--pipeline", "dedup", "--input", fs_name(root), output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    assert sorted(_raw_key(r) for _, r in ledger.iterrows()) == sorted(want)
    read_shards(tmp_path / "out")


def _random_tar(rng: random.Random) -> tuple[bytes, list[tuple[bytes, int]], int]:
    """A tar of random samples, (key, where the data of each of its members ends), and where the
    end-of-archive marker starts."""
    buffer, members = io.BytesIO(), []
    keys = {_name(rng) for _ in range(4)}
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tar:
        order = sorted(keys)
        order.append(order[0])  # listed again after the others: the same sample twice
        parts_of = {}
        for key in order:
            good = key == order[0]  # a sample that is kept (the first time)
            parts = parts_of.setdefault(key, {"jpg": photo(40) if good else _image(rng),
                                              "txt": b"a dog" if good else _caption(rng)})
            if rng.random() < 0.5 and not good:
                parts["json"] = rng.choice([rng.randbytes(20), json.dumps(
                    {"url": "http://x.example/\udc80", "k\udcff": ["\ud83d"]}).encode()])
            for ext, data in parts.items():
                info = tarfile.TarInfo(fs_name(key) + "." + ext)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                members.append((key, tar.offset - (-len(data) % 512)))  # its data ends here
        marker = tar.offset
    return buffer.getvalue(), members, marker


def test_random_truncated_tars(tmp_path):
    os.makedirs(tmp_path / "in")
    want, bad = [], 0
    for seed in SEEDS:
        rng = random.Random(seed)
        data, members, marker = _random_tar(rng)
        cut = len(data) if seed == 0 else rng.randint(0, marker + 1024)
        (tmp_path / "in" / f"{seed:05d}.tar").write_bytes(data[:cut])
        # one ledger row per group of consecutive members of a key (the repeated key: two)
        whole = [key for key, end in members if end <= cut]
        want += [(f"{seed:05d}.tar", k) for i, k in enumerate(whole) if i == 0 or whole[i - 1] != k]
        bad += cut < marker + 1024  # cut before the marker's end: reported
    # no dedup: the repeated sample's second copy must be caught by the writer's rule alone
    assert _run("--pipeline", "dedup", "--dedup", "none", "--input", str(tmp_path / "in"),
                output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    samples = ledger[ledger["reason"] != "input:bad_tar"]
    assert sorted((r["source_shard"], _raw_key(r)) for _, r in samples.iterrows()) == sorted(want)
    assert (ledger["reason"] == "input:bad_tar").sum() == bad
    assert "input:duplicate_row" in set(ledger["reason"])  # the repeated sample, kept once
    read_shards(tmp_path / "out")


def _random_list(rng: random.Random, fmt: str, seed: int) -> tuple[bytes, list[str]]:
    """A list with good rows (url `.../<seed>/<i>.jpg`, random caption), random lines, one
    unterminated quote, cut at a random byte; the urls of the good rows the cut kept whole."""
    lines = [b"url,caption"] if fmt == "csv" else []
    good = []
    quote_at = rng.randrange(2, 12)
    for i in range(12):
        url = f"http://x.example/{seed}/{i}.jpg"
        roll = rng.random()
        if i == quote_at and fmt == "csv":
            lines.append(url.encode() + b',"an open quote that never closes')
        elif roll < 0.6:
            caption = bytes(b for b in _caption(rng) if b not in b'\r\n",')
            if fmt == "csv":
                lines.append(url.encode() + b"," + caption)
            else:
                text = caption.decode("utf-8", "surrogateescape")  # json.dumps writes \udcXX escapes
                lines.append(json.dumps({"url": url, "caption": text}).encode())
            good.append((url, len(lines)))
        else:  # random bytes: a row, a ragged row or not a row at all
            lines.append(bytes(b for b in rng.randbytes(rng.randint(0, 30)) if b not in b'\r\n"'))
    if good:  # a row again, and a row that is kept twice in a row: two ledger rows each, one kept
        url, line = rng.choice(good)
        lines.append(lines[line - 1])
        good.append((url, len(lines)))
    url = f"http://x.example/{seed}/twice.jpg"
    twice = f"{url},a dog".encode() if fmt == "csv" else json.dumps({"url": url, "caption": "a dog"}).encode()
    at = 1 if fmt == "csv" else 0
    lines[at:at] = [twice, twice]
    good = [(u, n + 2 if n > at else n) for u, n in good] + [(url, at + 1), (url, at + 2)]
    data = b"\n".join(lines) + b"\n"
    header = len(lines[0]) + 1 if fmt == "csv" else 0
    cut = rng.randint(header, len(data))
    data = data[:cut]
    whole = data.count(b"\n")  # lines that end before the cut
    return data, [url for url, line in good if line <= whole]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_random_cut_url_lists(tmp_path, fmt):
    os.makedirs(tmp_path / "in")
    urls = []
    for seed in SEEDS:
        data, kept_whole = _random_list(random.Random(seed), fmt, seed)
        (tmp_path / "in" / f"{seed}.{fmt}").write_bytes(data)
        urls += kept_whole
    assert _run("--pipeline", "metaclip", "--input", str(tmp_path / "in" / f"*.{fmt}"), "--download=false",
                "--t", "1000", "--dedup", "none", output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    stats = json.load(open(tmp_path / "out" / "stats.json"))
    assert len(ledger) == stats["inputs"]
    # every whole good row is there once, under its own url, whatever lines came before it
    found = ledger["url"].dropna().tolist()
    assert sorted(u for u in found if u in urls) == sorted(urls)
    kept = ledger.loc[ledger["status"] == "kept", "uid"]
    assert kept.is_unique and (ledger["reason"] == "input:duplicate_row").any()
    blank = (lambda x: x == b"") if fmt == "csv" else (lambda x: not x.strip())  # no record
    records = [x for seed in SEEDS for x in (tmp_path / "in" / f"{seed}.{fmt}").read_bytes().split(b"\n")
               if not blank(x)]
    lines = len(records) - (len(SEEDS) if fmt == "csv" else 0)  # less the headers
    assert len(ledger) <= lines  # one row per record at most, never a line twice
    bad = ledger.loc[ledger["reason"] == "input:bad_row", "source_key"]
    assert bad.is_unique


def test_a_list_cut_inside_its_header_is_refused_before_the_pipeline(tmp_path):
    (tmp_path / "cut.csv").write_bytes(b"url,capt")
    assert not _run("--pipeline", "metaclip", "--input", str(tmp_path / "cut.csv"), "--download=false",
                    output=tmp_path / "out")


def test_random_cut_parquet_lists(tmp_path):
    """A cut Parquet file has lost its footer: one input:bad_file row, the other files curated."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(tmp_path / "in")
    whole, cut_files = [], 0
    for seed in SEEDS:
        rng = random.Random(seed)
        rows = [{"url": f"http://x.example/{seed}/{i}.jpg",
                 "caption": _caption(rng).decode("utf-8", "replace"), "n": i} for i in range(8)]
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), buffer, row_group_size=3)
        data = buffer.getvalue()
        cut = len(data) if seed == 0 else rng.randint(0, len(data) - 1)
        (tmp_path / "in" / f"{seed}.parquet").write_bytes(data[:cut])
        whole += [r["url"] for r in rows] if cut == len(data) else []
        cut_files += cut < len(data)
    assert _run("--pipeline", "metaclip", "--input", str(tmp_path / "in" / "*.parquet"), "--download=false",
                "--dedup", "none", output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    assert sorted(ledger["url"].dropna()) == sorted(whole)
    assert (ledger["reason"] == "input:bad_file").sum() == cut_files == len(ledger) - len(whole)
