"""Hostile inputs, round two (issue 23), in URL lists: later files of another schema, integer
URLs, an input column named extra_json, non-finite floats, URL-less rows, a FIFO among the lists;
and strict JSON in every file a run writes."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from curate.errors import UsageError
from tests.conftest import read_ledger, run_curate
from tests.hostile_files import fifo, strict_json, watching_opens


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
