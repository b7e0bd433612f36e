"""Hostile inputs, round two (issue 23): paths that leave the input, special files, tar members
that lie about their size, keys that vanished, a busy output, values silently lost.

Each case is built here and run through a real recipe on FnApiRunner (runs are shared per
input kind), then checked for its exact ledger row (README "Inputs"), the files opened (a
Python audit hook sees every open of the run's readers), strict JSON in every shard, and, in a
subprocess, peak memory far below what a file claims.
"""
from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import stat
import subprocess
import sys
import tarfile

import pandas as pd
import pytest

from curate.errors import UsageError
from curate.io.output_lock import LOCK_FILE
from curate.run import main
from tests.conftest import read_ledger, run_curate
from tests.test_hostile_inputs import kept_in_shards, photo, read_shards, rows

CAP = 400_000  # --max_image_bytes in these runs: every photo of the sample is smaller
MiB = 2**20

# --- helpers: files the run must not open, tars no ordinary writer makes ------------------------

_opened: list[str] | None = None
_hooked = False


def _audit(event: str, args) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], (str, bytes)):
        _opened.append(os.path.realpath(os.fsdecode(args[0])))


@contextlib.contextmanager
def watching_opens():
    """The real paths of every file Python opens in the block (the readers run in this process);
    a watchdog ends the process if a read blocks (a FIFO opened for reading waits forever)."""
    global _opened, _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # cannot be removed: a no-op outside this block
        _hooked = True
    _opened = []
    faulthandler.dump_traceback_later(300, exit=True)
    try:
        yield _opened
    finally:
        faulthandler.cancel_dump_traceback_later()
        _opened = None


def member(name: str, data: bytes = b"", type_: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    """One tar member as GNU tar writes it (any type, any link target)."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = type_, link
    info.size = len(data) if type_ in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") + data + b"\0" * (-len(data) % 512)


def sparse_member(name: str, declared: int, stored: bytes) -> bytes:
    """A GNU sparse member (type S): `stored` bytes at the end of a `declared`-byte file of zeros.
    Python's tarfile reads such members (expanding the holes) but cannot write them."""
    buf = bytearray(member(name, stored)[:512])
    buf[156:157] = tarfile.GNUTYPE_SPARSE
    buf[386:398] = tarfile.itn(declared - len(stored), 12, tarfile.GNU_FORMAT)  # one region: offset
    buf[398:410] = tarfile.itn(len(stored), 12, tarfile.GNU_FORMAT)  # and length stored
    buf[483:495] = tarfile.itn(declared, 12, tarfile.GNU_FORMAT)  # the size it expands to
    buf[148:156] = b"%06o\0 " % tarfile.calc_chksums(bytes(buf))[0]
    return bytes(buf) + stored + b"\0" * (-len(stored) % 512)


def tar_of(*members: bytes) -> bytes:
    return b"".join(members) + b"\0" * 1024  # the end-of-archive marker


def strict_json(data: bytes):
    """json.loads that refuses NaN and Infinity (Python accepts them; strict readers do not)."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(data, parse_constant=refuse)


def shard_jsons(out) -> list[dict]:
    import webdataset as wds

    folder = os.path.join(str(out), "shards")
    return [strict_json(s["json"]) for name in sorted(os.listdir(folder)) if name.endswith(".tar")
            for s in wds.WebDataset(os.path.join(folder, name), shardshuffle=False)]


def fifo(path) -> None:
    os.mkfifo(path)


def socket_file(path) -> bool:
    try:
        os.mknod(path, stat.S_IFSOCK | 0o600)
        return True
    except (OSError, AttributeError):
        return False


# --- 1 and 3. a pairs table and an image folder: outside paths, special files, the cap ----------

@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """A folder beside the input: the curator's own files, which no run may read."""
    root = tmp_path_factory.mktemp("curator")
    (root / "secret.jpg").write_bytes(photo(20))
    (root / "notes.txt").write_bytes(b"my bank password")
    return root


@pytest.fixture(scope="module")
def table_run(tmp_path_factory, outside):
    base = tmp_path_factory.mktemp("table")
    root = base / "in"
    os.makedirs(root / "sub")
    (root / "a.jpg").write_bytes(photo(10))
    (root / "b.jpg").write_bytes(photo(11))
    (root / "big.jpg").write_bytes(photo(12) + b"\0" * CAP)  # past --max_image_bytes
    fifo(root / "pipe.jpg")
    os.symlink(outside / "secret.jpg", root / "link_out.jpg")
    (root / "sub" / "inner.jpg").write_bytes(photo(13))
    os.symlink("sub/inner.jpg", root / "link_in.jpg")  # stays in the folder: read
    os.symlink("/dev/zero", root / "zero.jpg")
    table = [
        {"file": "a.jpg", "caption": "a dog on a beach"},
        {"file": "b.jpg", "caption": "a cat on a sofa", "extra_json": "the input's own", "score": "-inf"},
        {"file": str(outside / "secret.jpg"), "caption": "an absolute path out"},
        {"file": "../" + os.path.basename(outside) + "/secret.jpg", "caption": "a relative path out"},
        {"file": "sub/../../" + os.path.basename(outside) + "/notes.txt", "caption": "a path out via sub"},
        {"file": "/etc/passwd", "caption": "a system file"},
        {"file": "/dev/zero", "caption": "an endless device"},
        {"file": "link_out.jpg", "caption": "a symlink out"},
        {"file": "zero.jpg", "caption": "a symlink to a device"},
        {"file": "link_in.jpg", "caption": "a symlink in"},
        {"file": "pipe.jpg", "caption": "a named pipe"},
        {"file": "sub", "caption": "a folder"},
        {"file": "big.jpg", "caption": "a large file"},
        {"caption": "no file"}, {"caption": "no file"},  # the same caption, two rows
    ]
    lines = [json.dumps(r).replace('"-inf"', "-Infinity") for r in table]  # a bare -Infinity, as JSONL writers emit
    (root / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    out = base / "out"
    with watching_opens() as opened:
        stats = run_curate("--pipeline", "dedup", "--input", str(root), "--max_image_bytes", str(CAP), output=out)
    return root, out, stats, list(opened)


def test_a_pairs_table_never_opens_what_lies_outside_the_folder_or_is_not_a_file(table_run, outside):
    root, out, stats, opened = table_run
    table = str(root / "pairs.jsonl")
    assert rows(read_ledger(out)) == {
        ("a.jpg", "kept", None), ("b.jpg", "kept", None),
        (str(outside / "secret.jpg"), "dropped", "input:outside_input"),
        (f"../{os.path.basename(outside)}/secret.jpg", "dropped", "input:outside_input"),
        (f"sub/../../{os.path.basename(outside)}/notes.txt", "dropped", "input:outside_input"),
        ("/etc/passwd", "dropped", "input:outside_input"),
        ("/dev/zero", "dropped", "input:outside_input"),
        ("link_out.jpg", "dropped", "input:outside_input"),
        ("zero.jpg", "dropped", "input:outside_input"),
        ("link_in.jpg", "kept", None),
        ("pipe.jpg", "dropped", "input:not_a_file"),
        ("sub", "dropped", "input:not_a_file"),
        ("big.jpg", "dropped", "input:too_large"),
        (f"{table}:14", "dropped", "input:missing_image"), (f"{table}:15", "dropped", "input:missing_image"),
    }
    never = {str(outside / "secret.jpg"), str(outside / "notes.txt"), "/etc/passwd", "/dev/zero",
             str(root / "pipe.jpg"), str(root / "big.jpg")}
    assert not never & set(opened), sorted(never & set(opened))
    assert str(root / "a.jpg") in opened  # the audit hook sees the readers' opens
    assert stats["inputs"] == 15 and len(kept_in_shards(out)) == 3


def test_rows_without_a_file_or_url_get_their_own_uid(table_run):
    ledger = read_ledger(table_run[1])
    no_file = ledger[ledger["caption"] == "no file"]
    assert len(no_file) == 2 and no_file["uid"].is_unique  # not one uid shared by two unmarked rows


def test_an_input_column_named_extra_json_and_a_non_finite_float_are_carried(table_run):
    out = table_run[1]
    ledger = read_ledger(out).set_index("source_key")
    assert ledger.loc["b.jpg", "src_extra_json"] == "the input's own"
    assert ledger.loc["b.jpg", "score"] == float("-inf")  # Parquet holds it as it is
    docs = {d["source_key"]: d for d in shard_jsons(out)}  # strict JSON: no bare -Infinity
    assert docs["b.jpg"]["score"] == "-Infinity" and docs["b.jpg"]["src_extra_json"] == "the input's own"
    for text in ledger["extra_json"].dropna():
        strict_json(text.encode())


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory, outside):
    """The images + .txt layout: the same rules for images and their caption and json files."""
    base = tmp_path_factory.mktemp("folder")
    root = base / "in" / "imgs"  # in a subfolder: .json files at the top would be pairs tables
    os.makedirs(root / "dir.jpg")
    for i, stem in enumerate(["ok", "txt_out", "txt_pipe", "json_out"]):
        (root / f"{stem}.jpg").write_bytes(photo(30 + i))
    (root / "ok.txt").write_text("a dog on a beach")
    os.symlink(outside / "notes.txt", root / "txt_out.txt")
    fifo(root / "txt_pipe.txt")
    (root / "json_out.txt").write_text("a red bus")
    os.symlink(outside / "notes.txt", root / "json_out.json")
    fifo(root / "pipe.jpg")
    os.symlink(outside / "secret.jpg", root / "link_out.jpg")
    os.symlink("/dev/zero", root / "zero.jpg")
    has_socket = socket_file(root / "sock.jpg")
    (root / "big.jpg").write_bytes(photo(34) + b"\0" * CAP)
    (root / "big.txt").write_text("a large file")
    out = base / "out"
    with watching_opens() as opened:
        run_curate("--pipeline", "dedup", "--input", str(root.parent), "--max_image_bytes", str(CAP), output=out)
    return root, out, list(opened), has_socket


def test_an_image_folder_reads_only_regular_files_inside_it(folder_run, outside):
    root, out, opened, has_socket = folder_run
    want = {("ok.jpg", "kept", None),
            ("txt_out.jpg", "dropped", "input:outside_input"),
            ("txt_pipe.jpg", "dropped", "input:not_a_file"),
            ("json_out.jpg", "dropped", "input:outside_input"),
            ("pipe.jpg", "dropped", "input:not_a_file"),
            ("link_out.jpg", "dropped", "input:outside_input"),
            ("zero.jpg", "dropped", "input:outside_input"),
            ("dir.jpg", "dropped", "input:not_a_file"),
            ("big.jpg", "dropped", "input:too_large")}
    if has_socket:
        want.add(("sock.jpg", "dropped", "input:not_a_file"))
    assert rows(read_ledger(out)) == {("imgs/" + key, status, reason) for key, status, reason in want}
    never = {str(outside / "secret.jpg"), str(outside / "notes.txt"), "/dev/zero", str(root / "pipe.jpg"),
             str(root / "txt_pipe.txt"), str(root / "sock.jpg"), str(root / "big.jpg")}
    assert not never & set(opened)
    assert len(kept_in_shards(out)) == 1


# --- 2, 5, 6. tars: sparse and oversized members, links, keys that vanished, empty shards --------

@pytest.fixture(scope="module")
def tar_run(tmp_path_factory, outside):
    base = tmp_path_factory.mktemp("tars")
    root = base / "in"
    os.makedirs(root)
    (root / "00000.tar").write_bytes(tar_of(
        member("a.jpg", photo(40)), member("a.txt", b"a dog on a beach"),
        member("__s07.jpg", photo(41)), member("__s07.txt", b"a cat on a sofa"),
        member("__s07.json", b'{"score": NaN, "extra_json": "theirs"}'),
        sparse_member("sparse.jpg", 2 * 2**30, b"\xff" * 4096), member("sparse.txt", b"a 2 GiB claim"),
        member("big.jpg", photo(42) + b"\0" * CAP), member("big.txt", b"past the cap"),
        member("hard.jpg", type_=tarfile.LNKTYPE, link="a.jpg"),
        member("hard.txt", type_=tarfile.LNKTYPE, link="a.txt"),
        member("soft.jpg", type_=tarfile.SYMTYPE, link="/nonexistent/x.jpg"),
        member("soft.txt", type_=tarfile.SYMTYPE, link="/etc/passwd"),
        member("fifo.jpg", type_=tarfile.FIFOTYPE), member("fifo.txt", b"a pipe"),
        member("twice.jpg", photo(43)), member("twice.txt", b"two images"), member("twice.jpg", photo(44)),
        member("noext", b"a member without an extension"),
        member("dir/", type_=tarfile.DIRTYPE),  # a folder: no key
        member("dir/c.jpg", photo(45)), member("dir/c.txt", b"a red bus"),
    ))
    (root / "00001.tar").write_bytes(b"")  # a worker died before writing
    (root / "00002.tar").write_bytes(b"this is not a tar " * 100)
    fifo(root / "00003.tar")
    (outside / "private.tar").write_bytes(tar_of(member("p.jpg", photo(46)), member("p.txt", b"mine")))
    os.symlink(outside / "private.tar", root / "00004.tar")
    (root / "00005.tar").write_bytes(tar_of(member("x" * (CAP + 1) + ".jpg", photo(47))))  # a long-name header past the cap
    out = base / "out"
    with watching_opens() as opened:
        stats = run_curate("--pipeline", "dedup", "--input", str(root), "--max_image_bytes", str(CAP), output=out)
    return root, out, stats, list(opened)


def test_every_key_of_a_tar_is_one_ledger_row(tar_run):
    root, out, stats, opened = tar_run
    ledger = read_ledger(out)
    found = rows(ledger)
    assert found == {
        ("a", "kept", None), ("__s07", "kept", None), ("dir/c", "kept", None),
        ("sparse", "dropped", "input:too_large"), ("big", "dropped", "input:too_large"),
        ("hard", "dropped", "input:link_member"), ("soft", "dropped", "input:link_member"),
        ("fifo", "dropped", "input:not_a_file"), ("twice", "dropped", "input:duplicate_member"),
        ("noext", "dropped", "input:missing_caption"),  # a key with nothing a sample is made of
        ("00001.tar:<unreadable at byte 0>", "dropped", "input:bad_tar"),
        ("00002.tar:<unreadable at byte 0>", "dropped", "input:bad_tar"),
        ("00003.tar", "dropped", "input:not_a_file"),
        ("00004.tar", "dropped", "input:outside_input"),
        ("00005.tar:<unreadable at byte 0>", "dropped", "input:bad_tar"),
    }
    bad = ledger[ledger["reason"] == "input:bad_tar"].set_index("source_key")
    assert "empty file" in json.loads(bad.loc["00001.tar:<unreadable at byte 0>", "extra_json"])["error"]
    assert "cap" in json.loads(bad.loc["00005.tar:<unreadable at byte 0>", "extra_json"])["error"]
    assert str(root / "00003.tar") not in opened and not any(p.endswith("private.tar") for p in opened)
    assert stats["inputs"] == len(found) and len(kept_in_shards(out)) == 3


def test_tar_json_carries_strict_floats_and_the_extra_json_field(tar_run):
    out = tar_run[1]
    docs = {d["source_key"]: d for d in shard_jsons(out)}
    assert docs["__s07"]["score"] == "NaN" and docs["__s07"]["src_extra_json"] == "theirs"
    read_shards(out)


def test_a_2_gib_sparse_member_is_never_expanded(tmp_path):
    """Peak memory of a whole run in a subprocess stays far below what the member claims."""
    os.makedirs(tmp_path / "in")
    (tmp_path / "in" / "00000.tar").write_bytes(tar_of(
        member("a.jpg", photo(50)), member("a.txt", b"a dog"),
        sparse_member("sparse.jpg", 2 * 2**30, b"\xff" * 4096), member("sparse.txt", b"a 2 GiB claim")))
    # the child's own peak (VmHWM, reset by exec; ru_maxrss would count this process's pages too)
    script = ("import sys; from curate.run import main; code = main(sys.argv[1:]); "
              "print('peak', next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]); "
              "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, "--pipeline", "dedup", "--input", str(tmp_path / "in"),
                           "--output", str(tmp_path / "out"), "--runner", "FnApiRunner"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_kib = int(done.stdout.rsplit("peak", 1)[1].split()[0])
    assert peak_kib < 1024 * 1024, f"peak {peak_kib / 1024:.0f} MiB for a 2 GiB claim"
    assert rows(read_ledger(tmp_path / "out")) == {("a", "kept", None), ("sparse", "dropped", "input:too_large")}


# --- 7. URL lists: mixed schemas, integer URLs, extra_json, non-finite floats, URL-less rows ------

@pytest.fixture(scope="module")
def list_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("lists")
    os.makedirs(base / "in")
    first = [{"url": "http://x.example/1.jpg", "caption": "a dog", "tag": 5, "d": 1, "extra_json": "mine",
              "score": "-inf"},
             {"caption": "a horse"}, {"caption": "a horse"}]  # no URL, the same caption
    later = [{"url": 12345, "caption": "a cat", "tag": "red", "d": 5.5},
             {"url": "http://x.example/3.jpg", "caption": "a bird", "tag": "007", "d": True, "score": "nan"}]
    for name, table in (("a.jsonl", first), ("b.jsonl", later)):
        text = "\n".join(json.dumps(r) for r in table).replace('"-inf"', "-Infinity").replace('"nan"', "NaN")
        (base / "in" / name).write_text(text + "\n")
    metadata = base / "metadata.json"
    metadata.write_text(json.dumps(["dog", "cat", "bird", "horse"]))
    out = base / "out"
    stats = run_curate("--pipeline", "metaclip", "--input", str(base / "in" / "*.jsonl"), "--download=false",
                       "--t", "1000", "--metadata", str(metadata), output=out)
    return base, out, stats


def test_a_later_file_of_another_schema_loses_no_value(list_run):
    base, out, _ = list_run
    for table in (read_ledger(out), pd.read_parquet(out / "curated_urls").sort_values("uid")):
        by_caption = table.set_index("caption")
        extra = {c: json.loads(e) if isinstance(e, str) else {} for c, e in by_caption["extra_json"].items()}
        # the first file's types are the run's; what does not fit them exactly is kept as it was
        assert by_caption.loc["a dog", "tag"] == 5 and by_caption.loc["a dog", "d"] == 1
        assert pd.isna(by_caption.loc["a cat", "tag"]) and extra["a cat"] == {"tag": "red", "d": 5.5}
        assert extra["a bird"]["tag"] == "007" and extra["a bird"]["d"] is True  # not 7, not 1
        assert by_caption.loc["a cat", "url"] == "12345"  # an integer URL is its text
        assert by_caption.loc["a dog", "src_extra_json"] == "mine"
        assert by_caption.loc["a dog", "score"] == float("-inf")
        for text in table["extra_json"].dropna():
            strict_json(text.encode())


def test_values_fit_their_column_exactly_or_stay_as_they_were():
    """The writers' rule, row by row (sidecars) and column by column (ledger parts): a value of
    another type is converted only where exact; any other is kept in extra_json as it was."""
    import pyarrow as pa

    from curate.io.ledger_batch import conform, samples_to_batch
    from curate.io.run_schema import build_schema, rows_to_table
    from curate.sample import Sample

    schema = build_schema({"n": pa.int64(), "f": pa.float64(), "t": pa.string(), "l": pa.list_(pa.int32())})
    values = [{"n": 5.5, "f": True, "t": 7, "l": [1.5]}, {"n": 3, "f": 2, "t": "007", "l": [2]},
              {"n": 4.0, "f": float("-inf"), "t": [1, 2], "l": [3.0]}, {"n": "007", "f": "x", "t": None, "l": "y"}]
    want = [({"n": None, "f": None, "t": "7", "l": None}, {"n": 5.5, "f": True, "l": [1.5]}),
            ({"n": 3, "f": 2.0, "t": "007", "l": [2]}, {}),
            ({"n": 4, "f": float("-inf"), "t": "[1, 2]", "l": [3]}, {}),
            ({"n": None, "f": None, "t": None, "l": None}, {"n": "007", "f": "x", "l": "y"})]
    samples = [Sample(uid=str(i), extras=v) for i, v in enumerate(values)]
    by_rows = rows_to_table([{"uid": str(i), **v} for i, v in enumerate(values)], schema)
    by_columns = conform([samples_to_batch(samples, [None] * len(samples))], schema)
    for table in (by_rows, by_columns):
        got = [({k: row[k] for k in ("n", "f", "t", "l")}, json.loads(row["extra_json"] or "{}"))
               for row in table.to_pylist()]
        assert got == want


def test_url_less_rows_are_keyed_by_file_and_line(list_run):
    base, out, stats = list_run
    ledger = read_ledger(out)
    horses = ledger[ledger["caption"] == "a horse"]
    assert sorted(horses["source_key"]) == [f"{base}/in/a.jsonl:2", f"{base}/in/a.jsonl:3"]
    assert set(horses["reason"]) == {"input:missing_url"} and horses["uid"].is_unique
    assert ledger["uid"].is_unique and stats["inputs"] == 5


def test_url_less_parquet_rows_are_keyed_as_the_row_reader_keys_them(tmp_path):
    """The column-wise Parquet reader keys URL-less rows by file and row number, as the row reader
    keys a JSONL list's lines (test_url_less_rows_are_keyed_by_file_and_line)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.sample import make_uid

    path = tmp_path / "list.parquet"
    pq.write_table(pa.table({"url": ["http://x.example/1.jpg", None, None], "caption": ["a dog"] * 3}), path)
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps(["dog"]))
    run_curate("--pipeline", "metaclip", "--input", str(path), "--download=false", "--t", "1000",
               "--metadata", str(metadata), output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    keyed = ledger.dropna(subset=["source_key"])
    assert sorted(keyed["source_key"]) == [f"{path}:2", f"{path}:3"] and ledger["uid"].is_unique
    assert set(keyed["reason"]) == {"input:missing_url"}
    assert all(uid == make_uid(key, "a dog") for uid, key in zip(keyed["uid"], keyed["source_key"]))


def test_an_integer_url_is_fetched_as_its_text(tmp_path):
    """The download recipe refuses "12345" as any other URL without a scheme, and says so."""
    path = tmp_path / "list.jsonl"
    path.write_text(json.dumps({"url": 12345, "caption": "a dog"}) + "\n")
    run_curate("--pipeline", "download", "--input", str(path), "--download_retries", "0", output=tmp_path / "out")
    row = read_ledger(tmp_path / "out").iloc[0]
    assert row["url"] == "12345" and row["reason"] == "download:unsupported_scheme"


def test_a_fifo_among_url_lists_is_one_row_and_a_fifo_first_is_refused(tmp_path):
    from curate.inputs import open_source

    (tmp_path / "a.jsonl").write_text(json.dumps({"url": "http://x.example/1.jpg", "caption": "a dog"}) + "\n")
    fifo(tmp_path / "b.jsonl")
    source = open_source(str(tmp_path / "*.jsonl"))
    with watching_opens():
        pairs = [(s.source_key, r) for f in source.files for s, r in source.read(f)]
    assert pairs == [(None, None), (str(tmp_path / "b.jsonl"), "input:not_a_file")]
    fifo(tmp_path / "0.jsonl")
    with pytest.raises(UsageError, match="not_a_file"):
        open_source(str(tmp_path / "*.jsonl"))
    # --progress counts a Parquet glob's rows from the footers: never a FIFO's
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.runners.progress import total_rows

    pq.write_table(pa.table({"url": ["http://x.example/1.jpg"], "caption": ["a dog"]}), tmp_path / "a.parquet")
    fifo(tmp_path / "b.parquet")
    with watching_opens() as opened:
        assert total_rows(open_source(str(tmp_path / "*.parquet"))) is None
    assert str(tmp_path / "b.parquet") not in opened


def test_every_json_file_is_strict_whatever_floats_it_carries(tmp_path):
    """README: non-finite floats are written by name in `<uid>.json`, `extra_json`, stats.json."""
    import numpy as np

    from curate.io.run_stats import write_stats
    from curate.io.strict_json import dumps

    value = {"a": float("nan"), "b": [float("-inf"), 1.5], "c": np.float32("inf"), "d": np.array([np.nan, 2.0]),
             "e": b"\x00\xff", "f": np.int64(3)}
    assert strict_json(dumps(value).encode()) == {"a": "NaN", "b": ["-Infinity", 1.5], "c": "Infinity",
                                                  "d": ["NaN", 2.0], "e": "00ff", "f": 3}
    write_stats(str(tmp_path), {"stages": {"score": {"threshold": float("nan")}}})
    assert strict_json((tmp_path / "stats.json").read_bytes()) == {"stages": {"score": {"threshold": "NaN"}}}


# --- 4. two runs into one output -----------------------------------------------------------------

HOLD = """
import os, signal, sys, time
from curate.io.output_lock import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    if sys.argv[2] == "crash":
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup: the lock file stays behind
    sys.stdin.read()
"""


def _holder(output, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(output), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def small_folder(tmp_path):
    root = tmp_path / "in"
    os.makedirs(root)
    (root / "a.jpg").write_bytes(photo(60))
    (root / "a.txt").write_text("a dog on a beach")
    return root


def test_a_second_run_into_a_busy_output_is_refused_before_any_work(small_folder, tmp_path, capsys):
    out = tmp_path / "out"
    holder = _holder(out, "hold")
    try:
        code = main(["--pipeline", "dedup", "--input", str(small_folder), "--output", str(out),
                     "--runner", "FnApiRunner"])
        assert os.listdir(out) == [LOCK_FILE]  # nothing written
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "is in use by another run" in err[0] and f"pid {holder.pid}" in err[0]


def test_a_rerun_after_a_crash_takes_the_stale_lock_and_resumes(small_folder, tmp_path):
    out = tmp_path / "out"
    holder = _holder(out, "crash")
    holder.wait(timeout=60)
    assert (out / LOCK_FILE).exists()  # left behind by the killed run, its lock gone with it
    stats = run_curate("--pipeline", "dedup", "--input", str(small_folder), output=out)
    assert stats["kept"] == 1 and not (out / LOCK_FILE).exists()
