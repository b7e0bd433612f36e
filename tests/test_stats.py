"""curate.stats: every number matches an independent pandas/numpy computation on the ledger."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.stats import collect, tables
from curate.stats.distributions import side_by_side
from curate.stats.histogram import Histogram
from tests.conftest import read_ledger
from tests.mounted_fs import PREFIX, mounted  # noqa: F401  (fixture)

HOSTS = ["a.example.com", "b.example.org", "img.c.net:8080", "D.Example.com"]
DOWNLOAD_REASONS = ["download:http_404", "download:timeout", "download:not_an_image"]


@pytest.fixture(scope="module")
def default_stats(default_run):
    out, _ = default_run
    return collect(str(out)), read_ledger(out)


def test_default_run_tables_agree_with_stats_json(default_stats):
    rs, _ = default_stats
    check = tables(rs)["checks"]
    assert len(check) >= 8 and check["ok"].all(), check[~check["ok"]]


def test_funnel_and_reasons_equal_the_ledger(default_stats):
    rs, ledger = default_stats
    named = tables(rs)
    reasons = ledger["reason"].dropna().value_counts()
    by_reason = named["drops_by_reason"].set_index("reason")["count"]
    assert by_reason.to_dict() == reasons.to_dict()
    funnel = named["funnel"]
    assert funnel.iloc[0]["in"] == len(ledger)
    assert funnel.iloc[-1]["out"] == (ledger["status"] == "kept").sum()
    assert (funnel["in"] - funnel["dropped"] == funnel["out"]).all()


def test_metaclip_entry_counts_equal_a_bincount_of_the_ledger(default_stats, default_run):
    rs, ledger = default_stats
    t = default_run[1]["stages"]["MetaCLIP"]["t"]
    ids = ledger["entry_ids"].dropna()
    before = np.bincount(np.concatenate([np.asarray(x, dtype=np.int64) for x in ids]))
    balanced_rows = ledger[ledger["entry_ids"].map(lambda x: x is not None and len(x) > 0)
                           & ~ledger["reason"].fillna("").str.startswith("metaclip:")]
    balanced = np.bincount(np.concatenate([np.asarray(x) for x in balanced_rows["entry_ids"]]),
                           minlength=before.size)
    top = tables(rs, top=25)["metaclip_top_entries"]
    assert list(top["before"]) == list(before[top["entry_id"]])
    assert list(top["balanced"]) == list(balanced[top["entry_id"]])
    assert list(top["before"]) == sorted(before[before > 0], reverse=True)[:25]
    summary = rs.get("entries").summary(t)
    assert summary["entries_over_t"] == int((before > t).sum())
    tail = (before > 0) & (before <= t)
    assert summary["tail_retention"] == pytest.approx(balanced[tail[:balanced.size]].sum() / before[tail].sum())
    entries = rs.entry_strings
    assert entries is not None and list(top["entry"]) == [entries[i] for i in top["entry_id"]]


def test_duplicate_clusters_images_and_captions_equal_pandas(default_stats):
    rs, ledger = default_stats
    named = tables(rs)
    groups = ledger["sha256"].dropna().value_counts()
    sizes = groups.value_counts().sort_index()
    got = named["duplicate_cluster_sizes"].query("key == 'sha256'").set_index("size")["clusters"]
    assert got.to_dict() == sizes.to_dict()
    sized = ledger.dropna(subset=["width", "height"])
    images = rs.get("images")
    assert images.min_side["all"].n == len(sized) and images.min_side["kept"].n == (sized["status"] == "kept").sum()
    short = np.minimum(sized["width"], sized["height"])
    assert abs(images.min_side["all"].quantile(0.5) - short.median()) <= 8  # one bin
    chars = ledger["caption"].str.len()
    captions = rs.get("captions")
    assert captions.chars["all"].n == len(ledger)
    assert abs(captions.chars["all"].quantile(0.5) - chars.median()) <= 5
    assert captions.words["kept"].n == (ledger["status"] == "kept").sum()


def test_shard_table_counts_equal_the_sidecars(default_stats, default_run):
    rs, _ = default_stats
    out = str(default_run[0])
    shards = tables(rs)["shards"]
    for _, row in shards.iterrows():
        sidecar = pq.read_metadata(os.path.join(out, "shards", f"{row['shard']}.parquet"))
        assert sidecar.num_rows == row["count"]
        assert os.path.getsize(os.path.join(out, "shards", row["file"])) == row["file_bytes"]
    assert shards["count"].sum() == default_run[1]["kept_in_shards"]


def test_same_tables_through_a_remote_filesystem(default_run, mounted):
    """Read through Beam's FileSystems on a non-local scheme, as on gs:// or s3://."""
    out = str(default_run[0])
    shutil.copytree(out, os.path.join(mounted, "runs", "one"))
    local, remote = tables(collect(out)), tables(collect(f"{PREFIX}runs/one"))
    assert set(local) == set(remote)
    for name in local:
        if name in ("overview", "shards"):
            continue
        pd.testing.assert_frame_equal(local[name], remote[name], check_dtype=False, obj=name)
    pd.testing.assert_frame_equal(local["shards"], remote["shards"])


# -- a ledger with download, filter and score columns, written part by part ------------------

def synthetic_ledger(folder, parts: int = 3, rows: int = 400, seed: int = 7) -> pd.DataFrame:
    """Rows that went download -> filter -> score, with the values each stage records."""
    rng = np.random.default_rng(seed)
    n = parts * rows
    stage = rng.choice(["download", "filter", "score", "kept"], size=n, p=[0.3, 0.2, 0.2, 0.3])
    frame = pd.DataFrame({
        "uid": [f"{i:032x}" for i in range(n)],
        "url": [f"http://{HOSTS[i % 4]}/img/{i}.jpg" for i in range(n)],
        "caption": ["word " * int(k) for k in rng.integers(1, 30, n)],
        "status": np.where(stage == "kept", "kept", "dropped"),
    })
    frame["reason"] = None
    frame.loc[stage == "download", "reason"] = rng.choice(DOWNLOAD_REASONS, (stage == "download").sum())
    frame.loc[stage == "filter", "reason"] = "filter:min_side"
    frame.loc[stage == "score", "reason"] = "score:below_threshold"
    frame["download_attempts"] = rng.integers(1, 4, n).astype("int32")
    past_download = stage != "download"
    frame["width"] = np.where(past_download, rng.integers(50, 1500, n), np.nan)
    frame["height"] = np.where(past_download, rng.integers(50, 1500, n), np.nan)
    frame["language"] = np.where(past_download, rng.choice(["en", "de", "fr", "ja"], n, p=[.6, .2, .1, .1]), None)
    scored = (stage == "score") | (stage == "kept")
    score = rng.normal(0.25, 0.06, n)
    score = np.where(stage == "kept", np.maximum(score, 0.28), np.where(stage == "score", np.minimum(score, 0.2799), score))
    frame["clip_score"] = np.where(scored, score, np.nan).astype("float32")
    frame["clip_threshold"] = np.where(scored, 0.28, np.nan).astype("float32")
    os.makedirs(os.path.join(folder, "ledger"))
    for p in range(parts):
        part = frame.iloc[p * rows:(p + 1) * rows].sort_values("uid")
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False),
                       os.path.join(folder, "ledger", f"part-00000-{p:05d}.parquet"))
    reasons = frame["reason"].dropna().value_counts().to_dict()
    with open(os.path.join(folder, "stats.json"), "w") as f:
        json.dump({"pipeline": "synthetic", "inputs": n, "kept": int((stage == "kept").sum()),
                   "dropped_by_reason": reasons, "shards": [], "stages": {}}, f)
    return frame


def test_downloads_scores_languages_and_stage_order(tmp_path):
    frame = synthetic_ledger(tmp_path)
    rs = collect(str(tmp_path))
    named = tables(rs, top=10)
    assert list(named["funnel"]["stage"]) == ["inputs", "download", "filter", "score"]
    assert named["checks"]["ok"].all()

    hosts = frame["url"].str.extract(r"://([^/:]+)")[0].str.lower()
    failed = frame["reason"].fillna("").str.startswith("download:")
    by_host = named["download_errors_by_host"].set_index("host")
    expected = hosts[failed].value_counts()
    assert by_host["failed"].to_dict() == expected.to_dict()
    assert by_host["attempted"].to_dict() == hosts.value_counts()[expected.index].to_dict()
    assert set(by_host.index) == {"a.example.com", "b.example.org", "img.c.net", "d.example.com"}
    errors = named["download_errors_by_reason"].set_index("reason")["count"]
    assert errors.to_dict() == frame.loc[failed, "reason"].value_counts().to_dict()

    scores = named["scores"].set_index("score").loc["clip_score"]
    values = frame["clip_score"].dropna().astype(np.float64)
    assert scores["count"] == len(values) and scores["threshold"] == pytest.approx(0.28)
    assert scores["mean"] == pytest.approx(values.mean(), rel=1e-6)
    for q, name in ((0.05, "p05"), (0.5, "median"), (0.95, "p95")):
        assert abs(scores[name] - np.quantile(values, q, method="inverted_cdf")) <= 0.0025 + 1e-9, name  # one bin
    assert scores["kept"] == (frame["status"] == "kept").sum()
    assert scores["dropped_by_cut"] == (frame["reason"] == "score:below_threshold").sum()
    assert scores["share_at_or_above_threshold"] == pytest.approx((values >= 0.28).mean(), abs=1e-9)

    languages = named["languages"].set_index("language")
    assert languages["all"].to_dict() == frame["language"].dropna().value_counts().to_dict()
    kept = frame[frame["status"] == "kept"]
    assert languages["kept"].to_dict() == kept["language"].value_counts().reindex(languages.index, fill_value=0).to_dict()


def test_workers_and_sampled_parts(tmp_path):
    synthetic_ledger(tmp_path, parts=4, rows=100)
    one, two = tables(collect(str(tmp_path))), tables(collect(str(tmp_path), workers=2))
    for name in one:
        pd.testing.assert_frame_equal(one[name], two[name], obj=name)
    sampled = collect(str(tmp_path), parts=2)
    assert sampled.sampled and sampled.funnel.inputs == 200
    assert "checks" not in tables(sampled) and "2 of 4" in tables(sampled)["notes"]["note"][0]


def test_histogram_merges_and_reads_quantiles_to_one_bin():
    rng = np.random.default_rng(1)
    values = rng.normal(0.3, 0.1, 5000)
    whole = Histogram.linear(-1, 1, 0.0025).add(values)
    pieces = Histogram.linear(-1, 1, 0.0025).add(values[:1234]).merge(Histogram.linear(-1, 1, 0.0025).add(values[1234:]))
    assert np.array_equal(whole.counts, pieces.counts) and whole.n == pieces.n == 5000
    for q in (0.01, 0.25, 0.5, 0.9, 0.99):
        assert abs(whole.quantile(q) - np.quantile(values, q)) <= 0.0025
    assert whole.share_below(0.3) == pytest.approx((values < 0.3).mean())
    wide = Histogram.linear(0, 1, 0.5).add([-2, 0.2, 0.7, 5])
    assert (wide.under, wide.over, list(wide.counts)) == (1, 1, [1, 1]) and wide.low == -2 and wide.high == 5
    kept = Histogram.linear(0, 1, 0.5).add([0.7])  # no value beyond the edges, unlike `wide`
    frame = side_by_side({"all": wide, "kept": kept})
    assert list(frame["all"]) == [1, 1, 1, 1] and list(frame["kept"]) == [0, 0, 1, 0]
    assert frame["left"].iloc[0] == -np.inf and frame["right"].iloc[-1] == np.inf
