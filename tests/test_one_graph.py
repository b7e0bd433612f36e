"""One graph for every run: text-only, multilingual and image runs make the decisions the code
before the redesign made, file for file.

Each case of `one_graph_cases.py` (URL lists in Parquet, CSV and JSONL with bad rows, URL
duplicates, extra columns and several ledger parts; MetaCLIP 2 over three files; bad lines;
the bundled default job with images; a scored DFN run with SemDeDup and semantic balance) runs
here and must give the stored expectations: every ledger and curated URL row (uid, status,
reason, entry ids, keep probability, dedup keeper and distance, scores), every shard file's
bytes and stats.json, as commit d0ad439 wrote them (with issue 23's input fixes, commit 64d9a86:
`tests/expected/generate.py`).
"""
from __future__ import annotations

import os

import pytest

import curate.ledger_layout
from curate.io.spill import SPILL_DIR
from tests.conftest import run_curate
from tests.one_graph_cases import CASES, text_rows, write_rows
from tests.snapshots import expected, snapshot

FAST = [name for name in CASES if name not in ("bundled_metaclip", "scored_dfn")]


def _run_case(name: str, folder, monkeypatch, *extra: str) -> dict:
    case = CASES[name]
    os.makedirs(folder, exist_ok=True)
    monkeypatch.chdir(folder)
    if case.part_rows:
        monkeypatch.setattr(curate.ledger_layout, "ROWS_PER_LEDGER_PART", case.part_rows)
    run_curate(*case.write(str(folder)), *extra, output="out")
    assert not os.path.exists(os.path.join(folder, "out", SPILL_DIR))
    return snapshot(os.path.join(folder, "out"))


def _assert_same(found: dict, want: dict) -> None:
    assert sorted(found["files"]) == sorted(want["files"])
    for name, content in want["files"].items():
        assert found["files"][name] == content, name
    _assert_holds(found["stats"], want["stats"], "stats")


def _assert_holds(found, want, where: str) -> None:
    """Every stored fact holds (facts a later feature added, such as a new stage setting, may be there too)."""
    if isinstance(want, dict):
        assert isinstance(found, dict), where
        for key, value in want.items():
            assert key in found, f"{where}.{key}"
            _assert_holds(found[key], value, f"{where}.{key}")
    else:
        assert found == want, where


@pytest.mark.parametrize("name", FAST)
def test_text_only_runs_make_the_stored_decisions(name, tmp_path, monkeypatch):
    _assert_same(_run_case(name, tmp_path, monkeypatch), expected(name))


def test_the_text_cases_cover_every_kind_of_row():
    reasons = expected("text_parquet")["stats"]["dropped_by_reason"]
    for reason in ("metaclip:no_match", "metaclip:balanced_out", "dedup:url", "input:missing_url"):
        assert reasons.get(reason, 0) > 0, reason
    assert len([n for n in expected("text_parquet")["files"] if n.startswith("ledger/")]) >= 4
    reasons = expected("worldwide_three_files")["stats"]["dropped_by_reason"]
    for reason in ("metaclip:no_match", "metaclip:balanced_out", "metaclip:no_language_metadata"):
        assert reasons.get(reason, 0) > 0, reason


def test_the_default_job_makes_the_stored_decisions(default_run):
    out, _ = default_run
    _assert_same(snapshot(out), expected("bundled_metaclip"))


def test_a_scored_run_makes_the_stored_decisions(tmp_path, monkeypatch):
    found = _run_case("scored_dfn", tmp_path, monkeypatch)
    _assert_same(found, expected("scored_dfn"))
    for reason in ("score:below_threshold", "dedup:sha256", "dedup:semantic", "balance:semantic_cap"):
        assert found["stats"]["dropped_by_reason"].get(reason, 0) > 0, reason


def test_two_worker_processes_write_the_same_files(tmp_path, monkeypatch):
    """Several files read in parallel by two SDK worker processes: the stored files, byte for byte
    the one-process run's (ledger parts keep their default size: worker processes would not see
    a patched one)."""
    os.makedirs(tmp_path / "in")
    rows = text_rows()
    for i in range(3):
        write_rows(rows[i::3], str(tmp_path / "in"), "parquet", name=f"urls{i}")
    monkeypatch.chdir(tmp_path)
    args = ["--pipeline", "metaclip", "--input", "in/urls*.parquet", "--download=false", "--batch_size", "8"]
    one = run_curate(*args, output="one")
    two = run_curate(*args, "--direct_num_workers", "2", "--direct_running_mode", "multi_processing", output="two")
    assert one["ledger_parts"] == two["ledger_parts"] and len(one["ledger_parts"]) == 3
    for folder in ("ledger", "curated_urls"):
        names = sorted(os.listdir(tmp_path / "one" / folder))
        assert names == sorted(os.listdir(tmp_path / "two" / folder))
        for name in names:
            assert (tmp_path / "one" / folder / name).read_bytes() == (tmp_path / "two" / folder / name).read_bytes()
    assert one["dropped_by_reason"] == two["dropped_by_reason"]
    case = CASES["worldwide_three_files"]
    os.makedirs(tmp_path / "ww")
    monkeypatch.chdir(tmp_path / "ww")
    run_curate(*case.write(str(tmp_path / "ww")), "--direct_num_workers", "2", "--direct_running_mode",
               "multi_processing", output="out")
    _assert_same(snapshot(tmp_path / "ww" / "out"), expected("worldwide_three_files"))
