"""curate.stats on the columns the download, scoring and dedup stages really write.

Two small real runs: MetaCLIP over a URL list served by the loopback HTTP server (download
outcomes on two hosts, then a tiny random-init open_clip scorer with a pool-fraction cut), and
the dedup recipe on a few bundled images that each carry five captions.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from curate.models.tiny import write_tiny_model
from curate.stats import collect, tables
from curate.stats import plots
from tests.conftest import SAMPLE, read_ledger, run_curate
from tests.http_fixture import http_server  # noqa: F401  (fixture)

FAST = ["--download_timeout", "1", "--download_retries", "1", "--retry_base_delay", "0.05",
        "--batch_size", "8", "--allow_private_addresses", "127.0.0.0/8"]
FAILING = ["/404", "/always503/a", "/page.jpg", "/truncated.jpg"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_model(str(tmp_path_factory.mktemp("tiny")), name="tiny-stats", seed=3)


def captions(n: int) -> list[str]:
    with open(os.path.join(SAMPLE, "pairs.jsonl")) as f:
        return [json.loads(line)["caption"] for line in f][:n]


def test_download_and_score_tables_equal_the_ledger(http_server, tiny_model, tmp_path):
    paths = [f"/img/{i}.jpg" for i in range(14)] + FAILING * 2
    urls = [http_server.url(p, host="localhost" if i % 3 else "127.0.0.1") for i, p in enumerate(paths)]
    with open(tmp_path / "urls.jsonl", "w") as f:
        for url, caption in zip(urls, captions(len(urls))):
            f.write(json.dumps({"url": url, "caption": caption}) + "\n")
    config, checkpoint = tiny_model
    run_curate("--input", str(tmp_path / "urls.jsonl"), "--t", "1000", *FAST, "--clip_model", config,
               "--clip_pretrained", checkpoint, "--clip_keep_fraction", "0.5", output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    rs = collect(str(tmp_path / "out"))
    named = tables(rs)
    checks = named["checks"].set_index("check")
    assert checks["ok"].all() and {"download urls", "download ok", "download hosts", "clip_score pool",
                                    "clip_score at or above the cut"} <= set(checks.index)
    stages = list(named["funnel"]["stage"])[1:]  # --t 1000: balancing keeps all, so no metaclip drops
    assert stages[:2] == ["download", "score"] and set(stages) <= {"download", "score", "dedup"}

    failed = ledger["reason"].fillna("").str.startswith("download:")
    assert failed.sum() == 2 * len(FAILING)
    hosts = ledger["url"].str.extract(r"://([^/:]+)")[0]
    by_host = named["download_errors_by_host"].set_index("host")
    assert by_host["failed"].to_dict() == hosts[failed].value_counts().to_dict()
    attempted = ledger["download_attempts"].notna() | failed
    assert by_host["attempted"].to_dict() == hosts[attempted].value_counts()[by_host.index].to_dict()
    assert named["download_errors_by_reason"].set_index("reason")["count"].to_dict() == \
        ledger.loc[failed, "reason"].value_counts().to_dict()

    scored = ledger.dropna(subset=["clip_score"])
    summary = named["scores"].set_index("score").loc["clip_score"]
    assert summary["count"] == len(scored) > 0
    assert summary["threshold"] == pytest.approx(float(scored["clip_threshold"].max()))
    passed = (scored["clip_score"] >= scored["clip_threshold"]).mean()
    assert summary["share_at_or_above_threshold"] == pytest.approx(passed)
    assert summary["dropped_by_cut"] == (ledger["reason"] == "score:below_threshold").sum()
    lower_median = np.quantile(scored["clip_score"], 0.5, method="inverted_cdf")  # the order statistic
    assert abs(summary["median"] - lower_median) <= 0.0025  # one bin
    assert {"downloads", "scores", "metaclip_entries", "funnel"} <= set(plots.figures(rs))


def test_dedup_clusters_equal_the_ledger(tmp_path):
    folder = tmp_path / "images"
    os.makedirs(folder / "images")
    with open(os.path.join(SAMPLE, "pairs.jsonl")) as f:
        rows = [json.loads(line) for line in f if '"file"' in line][:30]  # 6 images, 5 captions each
    for row in rows:
        shutil.copy(os.path.join(SAMPLE, row["file"]), folder / row["file"])
    with open(folder / "pairs.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    run_curate("--pipeline", "dedup", "--input", str(folder), output=tmp_path / "out")
    ledger = read_ledger(tmp_path / "out")
    rs = collect(str(tmp_path / "out"))
    named = tables(rs)
    assert named["checks"]["ok"].all()
    dropped = ledger["reason"].fillna("").str.startswith("dedup:")
    assert dropped.sum() > 0
    clusters = ledger["dedup_keeper"].dropna().value_counts() + 1
    got = named["duplicate_cluster_sizes"].query("key == 'dedup_keeper'").set_index("size")["clusters"]
    assert got.to_dict() == clusters.value_counts().to_dict()
    drops = named["dedup_drops"].set_index("reason")["count"]
    assert drops.to_dict() == ledger.loc[dropped, "reason"].value_counts().to_dict()
    distances = named["dedup_distances"].set_index("reason")
    for reason, group in ledger[dropped].groupby("reason"):
        assert distances.loc[reason, "dropped"] == len(group)
        assert distances.loc[reason, "distance_max"] == pytest.approx(float(np.max(group["dedup_distance"])))
    assert "duplicates" in plots.figures(rs)
