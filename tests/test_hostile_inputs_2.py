"""Hostile inputs, round two (issue 23): paths that leave the input, special files, tar members
that lie about their size, keys that vanished.

Each case is built here and run through a real recipe on FnApiRunner (runs are shared per
input kind), then checked for its exact ledger row (README "Inputs"), the files opened (a
Python audit hook sees every open of the run's readers), strict JSON in every shard, and, in a
subprocess, peak memory far below what a file claims. URL lists and carried values:
test_hostile_lists.py; a busy output: test_output_lock.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

from tests.conftest import read_ledger, run_curate
from tests.hostile_files import (CAP, fifo, member, outside, shard_jsons, socket_file, sparse_member,  # noqa: F401
                                 strict_json, tar_of, watching_opens)  # (outside: a fixture)
from tests.test_hostile_inputs import kept_in_shards, photo, read_shards, rows


# --- 1 and 3. a pairs table and an image folder: outside paths, special files, the cap ----------

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
