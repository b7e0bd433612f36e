"""Subsets as DataComp uid arrays: the format, cuts from the ledger, set algebra, the CLI."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.score.pool_cut import keep_count
from curate.subset import combine as combine_module
from curate.subset import cut as cut_module
from curate.subset.__main__ import main
from curate.subset.format import (SubsetLookup, contains, hex_to_keys, keys_to_hex, load_keys, open_subset,
                                  pair_to_uid, pairs_to_keys, uid_to_pair)
from tests.conftest import SAMPLE, read_ledger, run_curate


def _uids(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    uids = [bytes(rng.integers(0, 256, 16, dtype=np.uint8)).hex() for _ in range(n)]
    # edges: all zero, all one, trailing zero bytes (NumPy's S16 strips them when comparing)
    return uids + ["0" * 32, "f" * 32, "ab" + "0" * 30, "ab" + "0" * 28 + "01", "00" * 15 + "01"]


def datacomp_array(uids) -> np.ndarray:
    """A subset as DataComp's own code writes it: plain NumPy, divmod(int(uid, 16), 2**64), sorted."""
    return np.sort(np.array([divmod(int(u, 16), 2**64) for u in uids], dtype="u8,u8"))


def _save(path, array) -> str:
    np.save(path, array)
    return str(path)


def test_datacomp_arrays_read_as_the_same_uids(tmp_path):
    uids = _uids(300, 1)
    path = _save(tmp_path / "dc.npy", datacomp_array(uids))
    pairs = open_subset(path)
    assert pairs.dtype.names == ("f0", "f1")
    assert [pair_to_uid(a, b) for a, b in pairs] == sorted(uids)  # sorted pairs = sorted hex
    keys = load_keys(path)
    assert keys_to_hex(keys) == sorted(uids)
    vectorized, valid = hex_to_keys(pa.array(uids))
    assert valid.all() and [uid_to_pair(u) for u in uids] == [tuple(p) for p in
                                                              np.asarray(keys_to_pairs_list(vectorized))]
    assert contains(keys, vectorized).all()
    assert not contains(keys, hex_to_keys(["1" * 32])[0]).any()
    # the reshard lookup (memory-mapped) reads other field names and byte orders by position
    other = _save(tmp_path / "be.npy", datacomp_array(uids).astype([("hi", ">u8"), ("lo", ">u8")]))
    for lookup in (SubsetLookup(path), SubsetLookup(other)):
        assert lookup.contains(vectorized).all() and not lookup.contains(hex_to_keys(["1" * 32])[0]).any()
    assert main(["info", other]) == 0


def keys_to_pairs_list(keys):
    from curate.subset.format import keys_to_pairs

    return [(int(a), int(b)) for a, b in keys_to_pairs(keys)]


def test_uid_parsing_flags_what_is_not_a_uid():
    keys, valid = hex_to_keys(pa.array(["A" * 32, None, "xyz", "g" * 32, "0" * 31, "b" * 32]))
    assert valid.tolist() == [True, False, False, False, False, True]
    assert keys_to_hex(keys) == ["a" * 32, "b" * 32]


@pytest.mark.parametrize("op", ["and", "or", "not"])
def test_combine_is_set_algebra_across_chunk_boundaries(op, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(combine_module, "CHUNK", 7)
    a, b, c = _uids(60, 3), _uids(50, 4)[:40] + _uids(60, 3)[::3], _uids(30, 5) + _uids(60, 3)[::5]
    paths = [_save(tmp_path / f"{n}.npy", datacomp_array(u)) for n, u in (("a", a), ("b", b), ("c", c))]
    assert main(["combine", *paths, f"--{op}", "--to", str(tmp_path / "out.npy")]) == 0
    sa, sb, sc = set(a), set(b), set(c)
    want = {"and": sa & sb & sc, "or": sa | sb | sc, "not": sa - sb - sc}[op]
    assert np.array_equal(np.load(tmp_path / "out.npy"), datacomp_array(sorted(want)))
    assert f"{len(want):,} uids" in capsys.readouterr().out


def _bad_files(tmp_path) -> dict:
    text = tmp_path / "text.npy"
    text.write_text("uid\n0123\n")
    unsorted = datacomp_array(_uids(20, 6))[::-1]
    return {
        "missing": (str(tmp_path / "nope.npy"), "no such file"),
        "not npy": (str(text), "cannot read"),
        "dtype": (_save(tmp_path / "int.npy", np.arange(5, dtype=np.int64)), "expected DataComp's"),
        "fields": (_save(tmp_path / "f4.npy", np.zeros(3, dtype="u4,u4")), "expected DataComp's"),
        "unsorted": (_save(tmp_path / "unsorted.npy", unsorted), "not sorted"),
    }


@pytest.mark.parametrize("case", ["missing", "not npy", "dtype", "fields", "unsorted"])
def test_bad_subset_files_fail_with_one_line(case, tmp_path, capsys):
    path, message = _bad_files(tmp_path)[case]
    good = _save(tmp_path / "good.npy", datacomp_array(_uids(5, 7)))
    assert main(["combine", good, path, "--and", "--to", str(tmp_path / "o.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not os.path.exists(tmp_path / "o.npy")


def _ledger(tmp_path, rows: int = 5000) -> str:
    """A synthetic ledger in three parts with two model scores, languages and fates."""
    rng = np.random.default_rng(8)
    folder = tmp_path / "run" / "ledger"
    folder.mkdir(parents=True)
    uids = _uids(rows - 5, 9)
    dfn = rng.normal(0.2, 0.1, rows).astype(np.float32)
    dfn[::7] = dfn[3]  # ties at many places
    clip = rng.normal(0.25, 0.05, rows).astype(np.float32)
    unscored = rng.random(rows) < 0.2
    reasons = rng.choice(np.array([None, "score:below_threshold", "dedup:phash", "filter:language"], dtype=object),
                         rows, p=[0.4, 0.3, 0.2, 0.1])
    reasons[unscored] = "download:http_404"
    no_clip = unscored | (np.arange(rows) % 11 == 0)  # a second model that failed on some
    table = pa.table({
        "uid": uids, "status": ["kept" if r is None else "dropped" for r in reasons], "reason": list(reasons),
        "language": rng.choice(["en", "de", "fr"], rows),
        "dfn_score": pa.array(dfn, pa.float32(), mask=unscored),
        "clip_score": pa.array(clip, pa.float32(), mask=no_clip),
        "width": rng.integers(64, 1024, rows),
    })
    for i, start in enumerate(range(0, rows, 2000)):
        pq.write_table(table.slice(start, 2000), folder / f"part-00000-{i:05d}.parquet")
    return str(tmp_path / "run")


def _selected(to) -> set[str]:
    return set(keys_to_hex(pairs_to_keys(np.load(to))))


def test_cut_is_exact_and_anded_over_the_whole_ledger(tmp_path, capsys):
    run = _ledger(tmp_path)
    to = str(tmp_path / "cut.npy")
    assert main(["cut", run, "--keep_fraction", "dfn_score=0.3", "--min", "clip_score=0.24",
                 "--language", "en", "--where", "dfn_score < 0.9 or language = 'de'", "--to", to]) == 0
    df = pd.read_parquet(os.path.join(run, "ledger"))
    pool = df[df.dfn_score.notna() & df.clip_score.notna()]  # what reached the scoring stage's cut
    k = keep_count(0.3, len(pool))
    threshold = np.sort(pool.dfn_score.to_numpy(np.float32))[::-1][k - 1]
    candidates = df.status.eq("kept") | df.reason.eq("score:below_threshold")
    want = df[df.index.isin(pool.index) & (df.dfn_score >= threshold) & (df.clip_score >= np.float32(0.24))
              & df.language.eq("en") & df.dfn_score.lt(0.9) & candidates]
    assert len(want) > 50 and _selected(to) == set(want.uid)
    summary = json.load(open(tmp_path / "cut.json"))
    assert summary["keep_fraction"]["dfn_score"]["threshold"] == float(threshold)
    assert summary["keep_fraction"]["dfn_score"]["pool"] == len(pool)
    assert summary["rows"] == len(df) and summary["uids"] == len(want) and summary["bad_uids"] == 0
    assert [c["rows"] for c in summary["cuts"]][-1] == int(candidates.sum())
    assert "threshold" in capsys.readouterr().out


def test_reason_patterns_and_export(tmp_path):
    run = _ledger(tmp_path)
    df = pd.read_parquet(os.path.join(run, "ledger"))
    assert main(["export", run, "--to", str(tmp_path / "kept.npy")]) == 0
    assert _selected(tmp_path / "kept.npy") == set(df.uid[df.status == "kept"])
    assert main(["cut", run, "--reason", "dedup:*", "--reason", "kept", "--to", str(tmp_path / "r.npy")]) == 0
    dedup = df.reason.fillna("").str.startswith("dedup:")
    assert _selected(tmp_path / "r.npy") == set(df.uid[(df.status == "kept") | dedup])
    assert main(["cut", run, "--reason", "*", "--where", "dfn_score is null", "--to", str(tmp_path / "n.npy")]) == 0
    assert _selected(tmp_path / "n.npy") == set(df.uid[df.dfn_score.isna()])


def test_where_is_sql_as_the_readme_writes_it(tmp_path):
    run = _ledger(tmp_path)
    df = pd.read_parquet(os.path.join(run, "ledger"))
    to = str(tmp_path / "s.npy")
    where = "dfn_score >= 0.3 AND (width >= 256 OR language IN ('en', 'de'))"
    assert main(["cut", run, "--where", where, "--to", to]) == 0
    candidates = df.status.eq("kept") | df.reason.eq("score:below_threshold")
    want = df[(df.dfn_score >= np.float32(0.3)) & (df.width.ge(256) | df.language.isin(["en", "de"])) & candidates]
    assert len(want) > 100 and _selected(to) == set(want.uid)
    # '*' is every row, the kept ones (no reason) included
    assert main(["cut", run, "--reason", "*", "--where", where, "--to", to]) == 0
    assert _selected(to) == set(df.uid[(df.dfn_score >= np.float32(0.3)) & (df.width.ge(256) | df.language.isin(["en", "de"]))])


def test_repeated_and_malformed_uids_are_written_once_and_counted(tmp_path):
    folder = tmp_path / "run" / "ledger"
    folder.mkdir(parents=True)
    uids = _uids(40, 11)
    rows = uids + uids[:7] + ["not-a-uid", None, "g" * 32, "AB" * 16]
    pq.write_table(pa.table({"uid": rows, "status": ["kept"] * len(rows), "reason": pa.nulls(len(rows), pa.string())}),
                   folder / "part-00000-00000.parquet")
    assert main(["export", str(tmp_path / "run"), "--to", str(tmp_path / "k.npy")]) == 0
    summary = json.load(open(tmp_path / "k.json"))
    assert (summary["selected_rows"], summary["repeated_uids"], summary["bad_uids"]) == (len(rows), 7, 3)
    assert np.array_equal(np.load(tmp_path / "k.npy"), datacomp_array(sorted(set(uids) | {"ab" * 16})))


@pytest.mark.parametrize("args, message", [
    (["--where", "dfn_score >"], "--where: Parser Error: syntax error"),
    (["--where", "__import__('os').system('true')"], "--where:"),
    (["--where", "nope > 1"], "--where: no column 'nope' in the ledger"),
    (["--where", "language > 1"], "--where: Binder Error: Cannot compare values of type VARCHAR"),
    (["--where", "dfn_score"], "is a FLOAT, not a true/false test"),
    (["--where", "count(*) > 10"], "--where: Binder Error: WHERE clause cannot contain aggregates"),
    (["--where", "random() < 0.5"], "--where: random() gives another answer on every run"),
    (["--where", "1=1; DROP TABLE ledger"], "more than one statement"),
    (["--where", "uid IN (SELECT column0 FROM read_csv('/etc/passwd'))"], "--where: a subquery is not a test of one row"),
    (["--where", "true ORDER BY 1"], "--where: Parser Error"),
    (["--min", "language=1"], "--min: Binder Error: Cannot compare values of type VARCHAR"),
    (["--min", "nope=1"], "--min: no column 'nope' in the ledger"),
    (["--keep_fraction", "dfn_score=1.5"], "--keep_fraction: the fraction must be in (0, 1]"),
    (["--keep_fraction", "language=0.5"], "not a score"),
    (["--min", "clip_score"], "--min: expected COLUMN=NUMBER"),
])
def test_bad_cuts_fail_with_one_line(args, message, tmp_path, capsys):
    run = _ledger(tmp_path, 50)
    assert main(["cut", run, *args, "--to", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_an_empty_cut_is_said(tmp_path, capsys):
    run = _ledger(tmp_path, 50)
    assert main(["cut", run, "--min", "dfn_score=5", "--to", str(tmp_path / "e.npy")]) == 0
    assert len(np.load(tmp_path / "e.npy")) == 0
    assert "warning: the subset is empty" in capsys.readouterr().err


def test_below_is_the_scoring_stages_reason():
    from curate.score.stage import BELOW

    assert cut_module.BELOW == BELOW


@pytest.fixture(scope="module")
def dfn_run(tmp_path_factory):
    """The dfn recipe with a tiny random-init model, keeping half of the scored pool."""
    from curate.models.tiny import write_tiny_model

    folder = tmp_path_factory.mktemp("subset-dfn")
    model, weights = write_tiny_model(str(folder / "models"), name="tiny-dfn", seed=12)
    out = folder / "out"
    stats = run_curate("--pipeline", "dfn", "--dfn_model", model, "--dfn_pretrained", weights,
                       "--dfn_keep_fraction", "0.5", "--device", "cpu", "--torch_threads", "1",
                       "--score_batch_size", "64", "--dedup", "none", "--input", SAMPLE, output=out)
    return out, stats


def test_a_ledger_cut_equals_the_scoring_recipes_kept_set(dfn_run, tmp_path):
    out, stats = dfn_run
    ledger = read_ledger(out)
    to = str(tmp_path / "half.npy")
    assert main(["cut", str(out), "--keep_fraction", "dfn_score=0.5", "--to", to]) == 0
    assert _selected(to) == set(ledger.uid[ledger.status == "kept"]) and stats["kept"] > 30
    cut = stats["stages"]["Score"]["cuts"]["keep_fraction"]["dfn"]
    summary = json.load(open(tmp_path / "half.json"))["keep_fraction"]["dfn_score"]
    assert summary["threshold"] == cut["threshold"] and summary["pool"] == cut["pool"]
    # a re-cut at another fraction ranks the same pool (kept + score:below_threshold rows)
    assert main(["cut", str(out), "--keep_fraction", "dfn_score=0.8", "--to", str(tmp_path / "more.npy")]) == 0
    pool = ledger[ledger.dfn_score.notna()]
    top = np.sort(pool.dfn_score.to_numpy(np.float32))[::-1][keep_count(0.8, len(pool)) - 1]
    assert _selected(tmp_path / "more.npy") == set(pool.uid[pool.dfn_score >= top])


def test_a_number_compares_with_a_float32_score_rounded_to_float32(tmp_path):
    """DuckDB binds a decimal to a FLOAT column's type, so `dfn_score >= 0.3` is the scoring stage's
    `np.float32(score) >= np.float32(0.3)`; the exponent form and --min compare alike, a DOUBLE
    column compares with the double, and a NaN is NULL (never selected, `IS NULL` finds it)."""
    folder = tmp_path / "run" / "ledger"
    folder.mkdir(parents=True)
    at = np.float32(0.3)
    scores = np.array([np.nextafter(at, np.float32(0)), at, np.nextafter(at, np.float32(1)), np.nan, 0.1, 0.7],
                      np.float32)
    doubles = np.array([np.nextafter(0.3, 0), 0.3, np.nextafter(0.3, 1), 0.3, np.nan, 0.5])
    uids = _uids(len(scores) - 5, 12)
    pq.write_table(pa.table({"uid": uids, "status": ["kept"] * len(uids), "reason": pa.nulls(len(uids), pa.string()),
                             "dfn_score": scores, "prob": doubles}), folder / "part-00000-00000.parquet")
    run = str(tmp_path / "run")
    for args, want in (
            (["--where", "dfn_score >= 0.3"], scores >= at),
            (["--where", "dfn_score >= 3e-1"], scores >= at),
            (["--min", "dfn_score=0.3"], scores >= at),
            (["--where", "dfn_score = 0.3"], scores == at),
            (["--where", "NOT dfn_score < 0.3"], scores >= at),  # NaN: unknown either way
            (["--where", "dfn_score IS NULL"], np.isnan(scores)),
            (["--where", "prob >= 0.3"], doubles >= 0.3)):
        assert main(["cut", run, *args, "--to", str(tmp_path / "s.npy")]) == 0, args
        assert _selected(tmp_path / "s.npy") == {u for u, w in zip(uids, want) if w}, args
    assert (scores >= at).sum() == 3 and (doubles >= 0.3).sum() == 4
