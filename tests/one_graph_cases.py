"""Text-only MetaCLIP runs whose outputs are stored as expectations (tests/expected/, snapshots.py).

Each case writes its input under a folder and returns the run's flags with paths relative to
that folder (the run starts there), so the uids of rows keyed by their file name do not depend
on where the folder is. Shared by `tests/test_one_graph.py` and `tests/expected/generate.py`.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Callable, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curate.inputs import bundled_sample, bundled_worldwide_sample

PART_ROWS = 40  # small ledger parts, so the rows span several parts and blocks


class Case(NamedTuple):
    name: str
    write: Callable[[str], list[str]]  # folder -> the run's flags
    part_rows: int | None  # ledger part size of the run (None: the default)


def text_rows() -> list[dict]:
    """The bundled sample's real web rows plus bad rows, URL duplicates and extra columns."""
    with open(os.path.join(bundled_sample(), "pairs.jsonl")) as f:
        web = [r for r in map(json.loads, f) if not r.get("file") and r.get("url") and r.get("caption")]
    rows = [{"url": r["url"], "caption": r["caption"]} for r in web[:150]]
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


def worldwide_rows() -> list[dict]:
    with open(bundled_worldwide_sample(), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rows = rows[::20] + [r for r in rows if r["source"] == "constructed"]
    rows += [{"url": "http://x.example/e.jpg", "caption": ""}, {"url": "http://x.example/f.jpg", "caption": "  "},
             {"url": "http://x.example/g.jpg", "caption": "Dette er en norsk setning om en hund"}]
    return rows


def write_rows(rows: list[dict], folder: str, fmt: str, name: str = "urls") -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.{fmt}")
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=25)
    elif fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        pd.DataFrame([{k: v for k, v in r.items() if k != "tags"} for r in rows]).to_csv(path, index=False)
    return path


URL = "http://x.example/{}.jpg"


def csv_lines(sep: str) -> tuple[bytes, dict[int, str | None], list[str]]:
    """A list with every kind of bad line; the reason of each row by line number; the kept urls."""
    lines = [f"url{sep}caption".encode(),
             f"{URL.format(1)}{sep}a dog".encode(),
             f"{URL.format(2)}{sep}a cat{sep}extra field".encode(),  # ragged: more fields than the header
             f"{URL.format(3)}{sep}a red bus".encode(),
             URL.format(4).encode() + sep.encode() + b"caf\xe9 cake",  # a byte that is not UTF-8
             b"http://x.example/\xff.jpg" + sep.encode() + b"a horse",
             f'{URL.format(6)}{sep}"an open quote'.encode(),  # unterminated: runs to the end of the file
             f"{URL.format(7)}{sep}a bird".encode()]
    reasons = {2: None, 3: "input:bad_row", 4: None, 5: "input:non_utf8_caption",
               6: "input:non_utf8_url", 7: "input:bad_row", 8: None}
    return b"\n".join(lines) + b"\n", reasons, [URL.format(i) for i in (1, 3, 7)]


def jsonl_lines() -> tuple[bytes, dict[int, str | None], list[str]]:
    lines = [json.dumps({"url": URL.format(1), "caption": "a dog"}).encode(),
             b'{"url": "http://x.example/2.jpg", "caption": "a dog \\ud83d"}',  # a lone surrogate escape
             b'{"url": "http://x.example/\\udc00.jpg", "caption": "a cat"}',
             b"",  # a blank line is no row
             b'{"url": "http://x.example/4.jpg", "caption": "caf\xe9"}',
             b'{"url": "http://x.example/5.jpg", "capt',  # cut mid-line
             b"[1, 2]",
             json.dumps({"url": URL.format(7), "caption": "a bird"}).encode()]
    reasons = {1: None, 2: "input:non_utf8_caption", 3: "input:non_utf8_url", 5: "input:non_utf8_caption",
               6: "input:bad_row", 7: "input:bad_row", 8: None}
    return b"\n".join(lines) + b"\n", reasons, [URL.format(i) for i in (1, 7)]


METADATA = ["dog", "cat", "bus", "bird", "horse", "cake", "quote"]  # a few entries: no time building a matcher


def _text(fmt: str):
    def write(folder: str) -> list[str]:
        write_rows(text_rows(), os.path.join(folder, "in"), fmt)
        return ["--pipeline", "metaclip", "--input", f"in/urls.{fmt}", "--download=false", "--batch_size", "16"]
    return write


def _text_without_dedup(folder: str) -> list[str]:
    write_rows(text_rows() * 2, os.path.join(folder, "in"), "parquet")
    return ["--pipeline", "metaclip", "--input", "in/urls.parquet", "--download=false", "--dedup", "none",
            "--t", "3", "--seed", "7"]


def _worldwide(folder: str) -> list[str]:
    rows = worldwide_rows()
    os.makedirs(os.path.join(folder, "in"), exist_ok=True)
    for i in range(3):
        pq.write_table(pa.Table.from_pylist(rows[i::3]), os.path.join(folder, "in", f"urls{i}.parquet"),
                       row_group_size=20)
    return ["--pipeline", "metaclip2", "--input", "in/urls*.parquet", "--download=false", "--batch_size", "16",
            "--t", "2"]


def _bad_lines(fmt: str):
    def write(folder: str) -> list[str]:
        data, _, _ = jsonl_lines() if fmt == "jsonl" else csv_lines(",")
        with open(os.path.join(folder, f"list.{fmt}"), "wb") as f:
            f.write(data)
        with open(os.path.join(folder, "metadata.json"), "w") as f:
            json.dump(METADATA, f)
        return ["--pipeline", "metaclip", "--input", f"list.{fmt}", "--download=false", "--t", "1000",
                "--metadata", "metadata.json"]
    return write


def _bundled(folder: str) -> list[str]:
    """The default job: the bundled photos (5 captions each) and 1,000 web rows, shards written."""
    return ["--pipeline", "metaclip"]


def _scored(folder: str) -> list[str]:
    """The bundled photos scored by a tiny seeded DFN and cut, SemDeDup and semantic balance."""
    from curate.models.tiny import write_tiny_model

    os.makedirs(os.path.join(folder, "in"))
    with open(os.path.join(bundled_sample(), "pairs.jsonl")) as f, \
            open(os.path.join(folder, "in", "pairs.jsonl"), "w") as out:
        for row in map(json.loads, f):
            if row.get("file"):
                out.write(json.dumps(row) + "\n")
                target = os.path.join(folder, "in", row["file"])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy(os.path.join(bundled_sample(), row["file"]), target)
    write_tiny_model(os.path.join(folder, "model"), name="tiny-dfn", seed=0)
    return ["--pipeline", "dfn", "--input", "in", "--dfn_model", "model/tiny-dfn.json",
            "--dfn_pretrained", "model/tiny-dfn-weights/checkpoint.pt", "--dfn_keep_fraction", "0.6",
            "--dedup", "exact,phash,semantic", "--semdedup_eps", "0.003", "--balance", "semantic",
            "--semantic_balance_t", "30", "--samples_per_shard", "10", "--batch_size", "16"]


CASES = {case.name: case for case in [
    Case("text_parquet", _text("parquet"), PART_ROWS),
    Case("text_csv", _text("csv"), PART_ROWS),
    Case("text_jsonl", _text("jsonl"), PART_ROWS),
    Case("text_without_dedup", _text_without_dedup, PART_ROWS),
    Case("worldwide_three_files", _worldwide, None),
    Case("bad_lines_csv", _bad_lines("csv"), None),
    Case("bad_lines_jsonl", _bad_lines("jsonl"), None),
    Case("bundled_metaclip", _bundled, None),
    Case("scored_dfn", _scored, None),
]}
