"""The column-wise text-only MetaCLIP graph gives exactly the sample graph's outputs.

Same URL lists (Parquet read column-wise, CSV and JSONL through the row reader) with bad rows,
URL duplicates, extra columns and several ledger parts, run once through each graph: ledger
parts, curated URL parts and stats.json must be equal.
"""
from __future__ import annotations

import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curate.sample
from curate.io.spill import SPILL_DIR
from curate.metaclip import text_only
from tests.conftest import SAMPLE, run_curate

PART_ROWS = 40  # small ledger parts, so the rows span several parts and blocks


def _laion_rows() -> list[dict]:
    """The bundled sample's real web rows (URL and alt-text, no file)."""
    with open(os.path.join(SAMPLE, "pairs.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if not r.get("file")]


def _rows() -> list[dict]:
    base = [r for r in _laion_rows() if r.get("url") and r.get("caption")][:150]
    rows = [{"url": r["url"], "caption": r["caption"]} for r in base]
    rows += [
        {"url": None, "caption": "a dog on the beach"},  # missing url
        {"url": "   ", "caption": "a cat"},  # blank url
        {"url": "http://x.example/a.jpg", "caption": None},  # missing caption
        {"url": "http://x.example/b.jpg", "caption": "  \t "},  # empty caption
        {"url": "http://x.example/c.jpg", "caption": "zzqx qqzv"},  # matches nothing
    ]
    # URL duplicates: the same row twice, another caption, http/https + www variants
    rows += [dict(rows[0]), {"url": rows[1]["url"], "caption": rows[0]["caption"]},
             {"url": rows[2]["url"].replace("http://", "https://www.", 1), "caption": rows[2]["caption"]}]
    for i, row in enumerate(rows):
        row.update(clip_score=float(i % 7) / 10, status=f"s{i % 3}", width_px=i * 3, tags=[i, i + 1])
    return rows


def _write(rows: list[dict], folder, fmt: str) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"urls.{fmt}")
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=25)
    elif fmt == "jsonl":
        with open(path, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    else:
        pd.DataFrame([{k: v for k, v in r.items() if k != "tags"} for r in rows]).to_csv(path, index=False)
    return path


def _outputs(out) -> dict:
    found = {}
    for folder in ("ledger", "curated_urls"):
        directory = os.path.join(out, folder)
        for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
            found[f"{folder}/{name}"] = pq.read_table(os.path.join(directory, name))
    stats = json.load(open(os.path.join(out, "stats.json")))
    for key in ("output", "wall_time_s"):
        stats.pop(key, None)
    return found, stats


def _both(monkeypatch, tmp_path, args: list[str]):
    monkeypatch.setattr(curate.sample, "ROWS_PER_LEDGER_PART", PART_ROWS)
    used = []
    applies = text_only.applies
    monkeypatch.setattr(text_only, "applies", lambda flow: used.append(applies(flow)) or used[-1])
    run_curate(*args, output=tmp_path / "columns")
    monkeypatch.setattr(text_only, "applies", lambda flow: False)
    run_curate(*args, output=tmp_path / "samples")
    return used, _outputs(tmp_path / "columns"), _outputs(tmp_path / "samples")


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_column_graph_equals_sample_graph(monkeypatch, tmp_path, fmt):
    path = _write(_rows(), tmp_path / "in", fmt)
    used, (tables, stats), (want_tables, want_stats) = _both(
        monkeypatch, tmp_path, ["--pipeline", "metaclip", "--input", path, "--download=false", "--batch_size", "16"])
    assert used == [True]
    assert sorted(tables) == sorted(want_tables)
    assert len([n for n in tables if n.startswith("ledger/")]) >= 4
    for name, want in want_tables.items():
        assert tables[name].equals(want), name
    assert stats == want_stats
    reasons = stats["dropped_by_reason"]
    for reason in ("metaclip:no_match", "metaclip:balanced_out", "dedup:url", "input:missing_url"):
        assert reasons.get(reason, 0) > 0, reason
    assert not os.path.exists(tmp_path / "columns" / SPILL_DIR)


def test_column_graph_without_dedup_and_with_t(monkeypatch, tmp_path):
    path = _write(_rows() * 2, tmp_path / "in", "parquet")
    args = ["--pipeline", "metaclip", "--input", path, "--download=false", "--dedup", "none", "--t", "3",
            "--seed", "7"]
    used, (tables, stats), (want_tables, want_stats) = _both(monkeypatch, tmp_path, args)
    assert used == [True]
    assert tables.keys() == want_tables.keys()
    assert all(tables[n].equals(want_tables[n]) for n in want_tables)
    assert stats == want_stats
    assert "Dedup" not in stats["stages"] and stats["stages"]["MetaCLIP"]["t"] == 3


def test_runs_that_need_samples_keep_the_sample_graph(monkeypatch, tmp_path):
    used = []
    applies = text_only.applies
    monkeypatch.setattr(text_only, "applies", lambda flow: used.append(applies(flow)) or used[-1])
    run_curate("--pipeline", "metaclip", output=tmp_path / "folder")  # images in a folder
    assert used == [False]


def test_column_graph_same_output_on_two_worker_processes(tmp_path):
    """Several files, read in parallel by two SDK worker processes: the same files, byte for byte."""
    rows = _rows()
    os.makedirs(tmp_path / "in")
    for i in range(3):
        pq.write_table(pa.Table.from_pylist(rows[i::3]), tmp_path / "in" / f"urls{i}.parquet")
    args = ["--pipeline", "metaclip", "--input", str(tmp_path / "in" / "urls*.parquet"), "--download=false"]
    one = run_curate(*args, output=tmp_path / "one")
    two = run_curate(*args, "--direct_num_workers", "2", "--direct_running_mode", "multi_processing",
                     output=tmp_path / "two")
    assert one["ledger_parts"] == two["ledger_parts"] and len(one["ledger_parts"]) == 3
    for folder in ("ledger", "curated_urls"):
        names = sorted(os.listdir(tmp_path / "one" / folder))
        assert names == sorted(os.listdir(tmp_path / "two" / folder))
        for name in names:
            assert (tmp_path / "one" / folder / name).read_bytes() == (tmp_path / "two" / folder / name).read_bytes()
    assert one["dropped_by_reason"] == two["dropped_by_reason"]
