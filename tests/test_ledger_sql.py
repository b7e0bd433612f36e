"""The ledger as a DuckDB table: `open_ledger`, `open_run(...).sql`, the README's queries as written."""
from __future__ import annotations

import ast
import os
import re
import shutil

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import UsageError
from curate.ledger import open_ledger
from curate.ledger.connection import add_ledger_view, connect, lock_to_ledger
from curate.stats import open_run
from tests.conftest import read_ledger
from tests.mounted_fs import PREFIX, mounted  # noqa: F401  (fixture)

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def readme_section() -> str:
    text = open(README, encoding="utf-8").read()
    return text.split("### The ledger is a table: ask it in SQL", 1)[1].split("\n## ", 1)[0]


def readme_python_queries() -> list[str]:
    block = readme_section().split("```python", 1)[1].split("```", 1)[0]
    return [ast.literal_eval(q) for q in re.findall(r'con\.sql\(("""[\s\S]*?"""|"[^"\n]*")\)', block)]


def readme_sql() -> str:
    return readme_section().split("```sql", 1)[1].split("```", 1)[0]


def host(url: str) -> str:
    return re.search(r"://([^/:?#]+)", url).group(1).lower()


def test_the_readmes_questions_equal_pandas_on_the_default_run(default_run):
    out, _ = default_run
    fates, hosts = readme_python_queries()
    ledger = read_ledger(out)
    con = open_ledger(str(out))
    got = con.sql(fates).df().set_index("fate")["samples"].to_dict()
    assert got == ledger.reason.fillna("kept").value_counts().to_dict()
    frame = con.sql(hosts).df()
    with_url = ledger[ledger.url.notna()].assign(host=lambda d: d.url.map(host))
    want = with_url.groupby("host").agg(samples=("uid", "size"), kept_rate=("status", lambda s: (s == "kept").mean()))
    assert len(frame) == min(10, len(want)) and sorted(frame.samples, reverse=True) == \
        sorted(want.samples, reverse=True)[:len(frame)]
    for row in frame.itertuples():
        assert row.samples == want.samples[row.host] and row.kept_rate == pytest.approx(want.kept_rate[row.host])


def test_the_readmes_german_dfn_question_equals_pandas(tmp_path):
    rng = np.random.default_rng(4)
    n = 3000
    frame = pd.DataFrame({
        "uid": [f"{i:032x}" for i in range(n)],
        "url": [f"https://{h}/{i}.jpg" for i, h in enumerate(rng.choice(["A.example.com", "b.org", "c.net:8080"], n))],
        "status": rng.choice(["kept", "dropped"], n),
        "language": rng.choice(["de", "en", None], n),
        "dfn_score": np.where(rng.random(n) < 0.1, np.nan, rng.normal(0.3, 0.1, n)).astype(np.float32),
    })
    os.makedirs(tmp_path / "run" / "ledger")
    for i in range(3):
        pq.write_table(pa.Table.from_pandas(frame.iloc[i * 1000:(i + 1) * 1000], preserve_index=False),
                       tmp_path / "run" / "ledger" / f"part-00000-{i:05d}.parquet")
    got = open_ledger(str(tmp_path / "run")).sql(readme_sql()).df().set_index("host")
    picked = frame[(frame.language == "de") & (frame.dfn_score > np.float32(0.3))].assign(host=lambda d: d.url.map(host))
    want = picked.groupby("host").agg(captions=("uid", "size"), kept_rate=("status", lambda s: (s == "kept").mean()))
    assert got.captions.to_dict() == want.captions.to_dict() and len(got) == 3
    assert got.kept_rate.to_dict() == pytest.approx(want.kept_rate.to_dict())


def test_open_ledger_takes_a_run_its_ledger_folder_a_glob_and_a_remote_path(default_run, mounted):
    out = str(default_run[0])
    rows = len(read_ledger(out))
    count = "SELECT count(*) FROM ledger"
    for path in (out, os.path.join(out, "ledger"), os.path.join(out, "ledger", "part-*.parquet")):
        assert open_ledger(path).sql(count).fetchall() == [(rows,)]
    shutil.copytree(out, os.path.join(mounted, "runs", "one"))  # through Beam's FileSystems, as gs:// would be
    assert open_ledger(f"{PREFIX}runs/one").sql(count).fetchall() == [(rows,)]
    assert open_run(out).sql("SELECT count(*) FROM ledger WHERE status = 'kept'").fetchall() == \
        [(int((read_ledger(out).status == "kept").sum()),)]
    assert open_ledger(out, parts=1).sql(count).fetchall()[0][0] <= rows
    with pytest.raises(UsageError, match="no such run folder or ledger file"):
        open_ledger(os.path.join(out, "nope"))


def test_nan_reads_as_null_and_a_locked_connection_reads_only_the_ledger(tmp_path):
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"uid": ["a" * 32, "b" * 32], "x": np.array([np.nan, 0.5], np.float32)}), path)
    (tmp_path / "secret.csv").write_text("a,b\n1,2\n")
    con = connect()
    add_ledger_view(con, [str(path)])
    assert con.sql("SELECT x IS NULL, x >= 0.3 FROM ledger ORDER BY uid").fetchall() == [(True, None), (False, True)]
    lock_to_ledger(con, [str(path)])
    assert con.sql("SELECT count(*) FROM ledger").fetchall() == [(2,)]
    for statement in (f"SELECT * FROM read_csv('{tmp_path / 'secret.csv'}')", f"COPY ledger TO '{tmp_path / 'o.csv'}'",
                      "SET enable_external_access = true", "INSTALL httpfs"):
        with pytest.raises(duckdb.Error):
            con.execute(statement)
    assert not os.path.exists(tmp_path / "o.csv")
