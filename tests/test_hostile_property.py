"""Property-style: generated bad inputs never crash a run, lose a row or corrupt a shard.

Seeded cases (random bytes as images, random byte strings as captions and file names, random
truncation of tars and of list files; special files, paths and symlinks that leave the input,
files past the cap, sparse, link and doubled tar members, list files whose schemas differ),
several per run: the run exits 0 (or refuses the input with exit 2 before the pipeline:
UsageError), every input is in the ledger once (with the reason its shape calls for), no file
outside the input or not a regular file is opened, every shard is read whole by webdataset and no
key is there twice, and no carried value is lost.
"""
from __future__ import annotations

import io
import json
import math
import os
import random
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import UsageError
from tests.conftest import read_ledger, run_curate
from tests.test_hostile_inputs import fs_name, photo, read_shards
from tests.hostile_files import member, outside, sparse_member, strict_json, watching_opens  # noqa: F401

SEEDS = (0, 1, 2, 3, 4)
CAP = 400_000  # --max_image_bytes of these runs: every photo of the sample is smaller


def _name(rng: random.Random) -> bytes:
    """A random file name stem: any byte but NUL, '/' and '.' (leading underscores included)."""
    allowed = [b for b in range(1, 256) if b not in b"/."]
    return bytes(rng.choice(allowed) for _ in range(rng.randint(1, 12)))


def _special(rng: random.Random, path: bytes, outside) -> str:
    """A file no run may read, made at `path`; the reason its ledger row must give."""
    kind = rng.randrange(5)
    if kind == 0:
        os.mkfifo(path)
        return "input:not_a_file"
    if kind == 1:
        os.symlink(os.fsencode(outside / "secret.jpg"), path)
        return "input:outside_input"
    if kind == 2:
        os.symlink(b"/dev/zero", path)
        return "input:outside_input"
    if kind == 3:
        os.makedirs(path)
        return "input:not_a_file"
    with open(path, "wb") as f:
        f.write(photo(rng.randrange(40)) + bytes(CAP))
    return "input:too_large"


def _never_opened(opened: list[str], outside, *special: bytes) -> None:
    assert not [p for p in opened if p.startswith(str(outside))], "a file outside the input was opened"
    assert "/dev/zero" not in opened
    assert not {os.path.realpath(os.fsdecode(p)) for p in special} & set(opened), "a special file was opened"


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


def test_random_image_folders(tmp_path, outside):
    root = os.path.join(os.fsencode(tmp_path), b"in")
    want, special, made = set(), {}, []  # made: the special files themselves
    for seed in SEEDS:
        rng = random.Random(seed)
        folder = os.path.join(root, _name(rng))
        os.makedirs(folder, exist_ok=True)
        for i in range(5):
            stem = _name(rng) + rng.choice([b".jpg", b".png", b".JPG"])
            path = os.path.join(folder, stem)
            if os.path.lexists(path) or os.path.lexists(os.path.splitext(path)[0] + b".txt"):
                continue
            key = os.path.relpath(path, root)
            if i == 4:  # a FIFO, a symlink out, a device, a folder or a file past the cap
                special[key] = _special(rng, path, outside)
                made.append(path)
            else:
                with open(path, "wb") as f:
                    f.write(_image(rng))
            roll = rng.random()
            txt = os.path.splitext(path)[0] + b".txt"
            if roll < 0.15 and key not in special:  # the caption file a FIFO, a symlink out, ...
                special[key] = _special(rng, txt, outside)
                made.append(txt)
            elif roll < 0.8:
                with open(txt, "wb") as f:
                    f.write(_caption(rng))
            want.add(key)
    with watching_opens() as opened:
        assert _run("--pipeline", "dedup", "--input", fs_name(root), "--max_image_bytes", str(CAP),
                    output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    assert sorted(_raw_key(r) for _, r in ledger.iterrows()) == sorted(want)
    reasons = {_raw_key(r): r["reason"] for _, r in ledger.iterrows()}
    assert {k: reasons[k] for k in special} == special
    _never_opened(list(opened), outside, *made)
    read_shards(tmp_path / "out")


def test_random_pairs_tables(tmp_path, outside):
    """Tables naming files by any path: inside, absolute, `../`, a system file, a device, a
    FIFO, a symlink out, a folder, a file past the cap, a number, nothing at all."""
    root = tmp_path / "in"
    os.makedirs(root / "sub")
    want = {}  # source key -> the reason it must have (None: whatever the image makes of it)
    for seed in SEEDS:
        rng = random.Random(seed)
        rows = []
        for i in range(6):
            caption = rng.choice(["a dog on a beach", "a cat", ""])
            kind, n = rng.randrange(10), "./" * (seed * 6 + i)  # n: every path written once
            name = f"s{seed}_{i}.jpg"
            if kind == 0:
                file, reason = f"{outside}/{n}secret.jpg", "input:outside_input"
            elif kind == 1:
                file, reason = f"sub/{n}../../{os.path.basename(outside)}/notes.txt", "input:outside_input"
            elif kind == 2:
                file, reason = "/" + n + rng.choice(["etc/passwd", "dev/zero", "dev/urandom"]), "input:outside_input"
            elif kind == 3:
                file, reason = name, _special(rng, os.fsencode(root / name), outside)
            elif kind == 4:
                file, reason = f"missing{seed}_{i}.jpg", "input:missing_image"
            elif kind == 5:
                file, reason = None, "input:missing_image"
            elif kind == 6:
                file, reason = seed * 100 + i, "input:missing_image"  # a number: the name "0", "101"
            else:
                (root / "sub" / name).write_bytes(_image(rng))
                file, reason = f"sub/{name}", None
            rows.append({"caption": caption} if file is None else {"file": file, "caption": caption})
            key = f"{root / f'pairs{seed}.jsonl'}:{len(rows)}" if file is None else str(file)
            want[key] = reason
        (root / f"pairs{seed}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with watching_opens() as opened:
        assert _run("--pipeline", "dedup", "--dedup", "none", "--input", str(root), "--max_image_bytes", str(CAP),
                    output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    assert sorted(ledger["source_key"]) == sorted(want) and ledger["uid"].is_unique
    refused = ("input:outside_input", "input:not_a_file", "input:too_large")
    found = dict(zip(ledger["source_key"], ledger["reason"]))
    assert {k: found[k] for k, r in want.items() if r in refused} == {k: r for k, r in want.items() if r in refused}
    assert not {"/etc/passwd", "/dev/urandom"} & set(opened)
    _never_opened(list(opened), outside, *(os.fsencode(root / k) for k, r in want.items() if r in refused[1:]))
    read_shards(tmp_path / "out")


ODD_REASONS = {"sparse": "input:too_large", "link": "input:link_member", "symlink": "input:link_member",
               "fifo": "input:not_a_file", "twice": "input:duplicate_member"}


def _odd_image(kind: str, name: str) -> bytes:
    """A `.jpg` member no sample can use: sparse past the cap, a link, a FIFO."""
    if kind == "sparse":  # 64 MiB claimed: past the cap, cheap should a regression expand it
        return sparse_member(name, 64 * 2**20, b"\xff" * 4096)
    types = {"link": (tarfile.LNKTYPE, "other.jpg"), "symlink": (tarfile.SYMTYPE, "/etc/passwd"),
             "fifo": (tarfile.FIFOTYPE, "")}
    return member(name, type_=types[kind][0], link=types[kind][1])


def _random_tar(rng: random.Random) -> tuple[bytes, list[tuple[bytes, int]], int, dict[bytes, str]]:
    """A tar of random samples, (key, where each of its members is whole: the end of a read
    member's data, the padded end of one passed over), where the end-of-archive marker starts,
    and the odd member of each key that has one (ODD_REASONS)."""
    buffer, members = io.BytesIO(), []
    keys = {_name(rng) for _ in range(4)}
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tar:
        order = sorted(keys)
        order.append(order[0])  # listed again after the others: the same sample twice
        parts_of, odd_of = {}, {}
        for key in order:
            good = key == order[0]  # a sample that is kept (the first time)
            parts = parts_of.setdefault(key, {"jpg": photo(40) if good else _image(rng),
                                              "txt": b"a dog" if good else _caption(rng)})
            odd = odd_of.setdefault(key, None if good or rng.random() < 0.4 else rng.choice(sorted(ODD_REASONS)))
            if rng.random() < 0.5 and not good:
                parts["json"] = rng.choice([rng.randbytes(20), json.dumps(
                    {"url": "http://x.example/\udc80", "k\udcff": ["\ud83d"]}).encode()])
            for ext, data in parts.items():
                name = fs_name(key) + "." + ext
                if ext == "jpg" and odd not in (None, "twice"):
                    raw = _odd_image(odd, name)
                    tar.fileobj.write(raw)
                    tar.offset += len(raw)
                    members.append((key, tar.offset))  # passed over, not read
                    continue
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                members.append((key, tar.offset - (-len(data) % 512)))  # its data ends here
                if ext == "jpg" and odd == "twice":  # a second image under the key
                    info.size = len(parts["txt"])
                    tar.addfile(info, io.BytesIO(parts["txt"]))
                    members.append((key, tar.offset))
        marker = tar.offset
    return buffer.getvalue(), members, marker, {k: o for k, o in odd_of.items() if o}


def test_random_truncated_tars(tmp_path):
    os.makedirs(tmp_path / "in")
    want, bad, odd = [], 0, {}
    for seed in SEEDS:
        rng = random.Random(seed)
        data, members, marker, odd_of = _random_tar(rng)
        cut = len(data) if seed == 0 else rng.randint(0, marker + 1024)
        (tmp_path / "in" / f"{seed:05d}.tar").write_bytes(data[:cut])
        # one ledger row per group of consecutive members of a key (the repeated key: two)
        whole = [key for key, end in members if end <= cut]
        want += [(f"{seed:05d}.tar", k) for i, k in enumerate(whole) if i == 0 or whole[i - 1] != k]
        bad += cut < marker + 1024  # cut before the marker's end: reported
        if seed == 0:  # whole: every odd key has the reason of its odd member
            odd = {k: ODD_REASONS[o] for k, o in odd_of.items()}
    # shards that are no tar: empty (a worker died), not a tar, a FIFO (never opened)
    (tmp_path / "in" / "00010.tar").write_bytes(b"")
    (tmp_path / "in" / "00011.tar").write_bytes(random.Random(9).randbytes(3000))
    os.mkfifo(tmp_path / "in" / "00012.tar")
    want.append(("00012.tar", b"00012.tar"))
    # no dedup: the repeated sample's second copy must be caught by the writer's rule alone
    with watching_opens() as opened:
        assert _run("--pipeline", "dedup", "--dedup", "none", "--input", str(tmp_path / "in"),
                    "--max_image_bytes", str(CAP), output=tmp_path / "out")
    assert str(tmp_path / "in" / "00012.tar") not in opened
    ledger = read_ledger(tmp_path / "out")
    samples = ledger[ledger["reason"] != "input:bad_tar"]
    assert sorted((r["source_shard"], _raw_key(r)) for _, r in samples.iterrows()) == sorted(want)
    assert (ledger["reason"] == "input:bad_tar").sum() == bad + 2
    assert "input:duplicate_row" in set(ledger["reason"])  # the repeated sample, kept once
    first = ledger[ledger["source_shard"] == "00000.tar"]
    assert odd and {_raw_key(r): r["reason"] for _, r in first.iterrows() if _raw_key(r) in odd} == odd
    assert ledger.loc[ledger["source_shard"] == "00012.tar", "reason"].tolist() == ["input:not_a_file"]
    read_shards(tmp_path / "out")


V_KINDS = (5, -3, 2.5, "007", "red", True, False, float("-inf"), float("nan"), [1, 2], None, 2**40)


def _random_list(rng: random.Random, fmt: str, seed: int) -> tuple[bytes, list[str], dict[str, object]]:
    """A list with good rows (url `.../<seed>/<i>.jpg` or, in JSONL, an integer; random caption;
    in JSONL a column `v` of any type: the first file's integers, so later files' schemas
    differ), random lines, one unterminated quote, cut at a random byte; the urls (as text) of the
    good rows the cut kept whole, and the `v` of each."""
    lines = [b"url,caption"] if fmt == "csv" else []
    good, values = [], {}
    pick = random.Random(seed + 1000)  # values of v: the cases the seeds made before stay as they were
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
                v = pick.randint(0, 99) if seed == 0 else pick.choice(V_KINDS)
                raw_url = seed * 1000 + i if pick.random() < 0.3 else url  # an integer URL: read as its text
                url = str(raw_url)
                lines.append(json.dumps({"url": raw_url, "caption": text, "v": v}).encode())
                values[url] = v
            good.append((url, len(lines)))
        else:  # random bytes: a row, a ragged row or not a row at all
            lines.append(bytes(b for b in rng.randbytes(rng.randint(0, 30)) if b not in b'\r\n"'))
    if good:  # a row again, and a row that is kept twice in a row: two ledger rows each, one kept
        url, line = rng.choice(good)
        lines.append(lines[line - 1])
        good.append((url, len(lines)))
    url = f"http://x.example/{seed}/twice.jpg"
    twice = f"{url},a dog".encode() if fmt == "csv" else json.dumps({"url": url, "caption": "a dog", "v": 7}).encode()
    values[url] = 7
    at = 1 if fmt == "csv" else 0
    lines[at:at] = [twice, twice]
    good = [(u, n + 2 if n > at else n) for u, n in good] + [(url, at + 1), (url, at + 2)]
    data = b"\n".join(lines) + b"\n"
    header = len(lines[0]) + 1 if fmt == "csv" else 0
    cut = rng.randint(header, len(data))
    data = data[:cut]
    whole = data.count(b"\n")  # lines that end before the cut
    kept = [url for url, line in good if line <= whole]
    return data, kept, {u: v for u, v in values.items() if u in kept}


def _carried(row: dict, name: str, column: pa.DataType | None):
    """The value of input column `name` in a ledger row: its column, else its extra_json."""
    if column is not None and row[name] is not None:
        return row[name], column
    return (strict_json(row["extra_json"].encode()) if row["extra_json"] else {}).get(name), None


def _same(value, carried, column: pa.DataType | None) -> bool:
    """Whether a carried value is the value written: in the run's column (the first file's
    integers), or in extra_json as it was, with its type (a non-finite float by its name)."""
    if column is not None:
        return pa.types.is_integer(column) and type(value) is int and value == carried
    if isinstance(value, float) and not math.isfinite(value):
        value = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
    return value == carried and type(value) is type(carried)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_random_cut_url_lists(tmp_path, fmt):
    os.makedirs(tmp_path / "in")
    urls, values = [], {}
    for seed in SEEDS:
        data, kept_whole, carried = _random_list(random.Random(seed), fmt, seed)
        (tmp_path / "in" / f"{seed}.{fmt}").write_bytes(data)
        urls += kept_whole
        values.update(carried)
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
    if fmt == "jsonl":  # files whose v differ in type: every value is carried, exactly or as it was
        table = pq.read_table(tmp_path / "out" / "ledger")
        column = table.schema.field("v").type if "v" in table.schema.names else None
        rows = [r for r in table.to_pylist() if r["url"] in values]
        assert len({r["url"] for r in rows}) == len(values) and any(
            type(v) is not int for v in values.values())
        for row in rows:
            carried, where = _carried(row, "v", column)
            assert _same(values[row["url"]], carried, where), (row["url"], values[row["url"]], carried, where)


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
