"""Resume after a kill, and downloading inside the metaclip recipe.

A run is killed (SIGKILL) while one batch hangs on a request and the others are done; a rerun
into the same output keeps their results, retries only transient failures, never requests a
success again, and writes the same ledger and shards as an uninterrupted run.
"""
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

from curate.download.cache import CACHE_DIR, remove_partial_files
from curate.download.client import DownloadClient
from curate.download.options import DownloadSettings
from curate.io.files import TMP_MARK
from tests.conftest import read_ledger, run_curate
from tests.http_fixture import http_server  # noqa: F401  (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 4
ARGS = ["--pipeline", "download", "--allow_private_addresses", "--download_retries", "0",
        "--download_timeout", "60", "--batch_size", str(BATCH), "--samples_per_shard", "5"]
COMPARED = ["uid", "url", "caption", "status", "reason", "width", "height", "image_format", "sha256",
            "http_status"]


def _write_list(path, server):
    """6 batches: images, 404s and 503s (an outage during the first run); one hang in the last."""
    paths = []
    for i in range(6 * BATCH - 1):
        paths.append(f"/404/{i}" if i % 7 == 3 else f"/outage/{i}" if i % 5 == 2 else f"/img/{i}.jpg")
    paths.append("/hang/last")
    with open(path, "w") as f:
        for i, p in enumerate(paths):
            f.write(json.dumps({"url": server.url(p), "caption": f"a photo of a cat, number {i}"}) + "\n")
    return str(path), paths


def _shard_contents(out):
    members = {}
    for name in sorted(os.listdir(out / "shards")):
        if name.endswith(".tar"):
            with tarfile.open(out / "shards" / name) as tar:
                for m in tar:
                    if not m.name.endswith(".json"):  # the json holds timings, which differ
                        members[(name, m.name)] = tar.extractfile(m).read()
    return members


def _leftovers(out):
    return [os.path.join(d, f) for d, _, files in os.walk(out) for f in files if TMP_MARK in f]


def test_killed_run_resumes_without_refetching_successes(http_server, tmp_path):
    urls, paths = _write_list(tmp_path / "urls.jsonl", http_server)
    out = tmp_path / "out"
    http_server.state.outage = True
    http_server.state.hang.set()
    proc = subprocess.Popen([sys.executable, "-m", "curate.run", *ARGS, "--input", urls, "--output", str(out),
                             "--runner", "FnApiRunner"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    cache = out / CACHE_DIR
    deadline = time.monotonic() + 90
    while not (cache.is_dir() and len([f for f in os.listdir(cache) if TMP_MARK not in f]) == 5):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the first run never finished its 5 batches"
        time.sleep(0.1)
    assert http_server.hits("/hang/last") == 1  # the last batch is stuck on it
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not (out / "stats.json").exists()

    first_hits = dict(http_server.state.hits)
    http_server.state.outage = False
    http_server.state.hang.clear()
    stats = run_curate(*ARGS, "--input", urls, output=out)
    ledger = read_ledger(out)
    rerun = {p: http_server.hits(p) - first_hits.get(p, 0) for p in paths}
    last_batch = set(paths[-BATCH:])  # never finished: fetched again in full
    for path in paths:
        if path in last_batch:
            assert rerun[path] == 1, path
        elif path.startswith("/outage/"):
            assert rerun[path] == 1, path  # transient (503): retried, now fine
        else:
            assert rerun[path] == 0, path  # a success or a 404: kept from the first run
    by_url = ledger.set_index("url")
    outage = [http_server.url(p) for p in paths if p.startswith("/outage/") and p not in last_batch]
    assert outage and by_url.loc[outage, "status"].eq("kept").all()
    assert by_url.loc[outage, "download_attempts"].eq(2).all()  # one per run
    kept_before = [http_server.url(p) for p in paths if p.startswith("/img/") and p not in last_batch]
    assert by_url.loc[kept_before, "download_from_cache"].all()
    assert not _leftovers(out)

    reference = tmp_path / "reference"
    ref_stats = run_curate(*ARGS, "--input", urls, output=reference)
    ref_ledger = read_ledger(reference)
    assert ledger[COMPARED].equals(ref_ledger[COMPARED])
    assert stats["dropped_by_reason"] == ref_stats["dropped_by_reason"] == {"download:http_404": 3}
    assert [s["file"] for s in stats["shards"]] == [s["file"] for s in ref_stats["shards"]]
    assert _shard_contents(out) == _shard_contents(reference)
    assert len(_shard_contents(out)) == 2 * stats["kept"]  # image + caption per kept sample, once


def test_metaclip_downloads_only_what_it_keeps(http_server, tmp_path):
    captions = ["a dog on the beach", "zxqv wplk", "a red car parked on a street", "qqqq zzzz",
                "a cat sleeping on a sofa", "photo of a bridge at night"]
    paths = ["/photo/0.jpg", "/photo/1.jpg", "/404/m2", "/photo/3.jpg", "/flaky/m4", "/photo/5.jpg"]
    urls = tmp_path / "urls.jsonl"
    with open(urls, "w") as f:
        for path, caption in zip(paths, captions):
            f.write(json.dumps({"url": http_server.url(path), "caption": caption}) + "\n")
    out = tmp_path / "out"
    stats = run_curate("--pipeline", "metaclip", "--input", str(urls), "--allow_private_addresses",
                       "--retry_base_delay", "0.05", "--t", "1000", output=out)
    ledger = read_ledger(out).set_index("url")
    for path in paths:
        row = ledger.loc[http_server.url(path)]
        curated_out = str(row.reason).startswith("metaclip:")
        assert http_server.hits(path) == (0 if curated_out else 1 + path.startswith("/flaky/")), path
    assert ledger.loc[http_server.url("/photo/1.jpg"), "reason"] == "metaclip:no_match"
    assert ledger.loc[http_server.url("/404/m2"), "reason"] == "download:http_404"
    passed_metaclip = ~ledger.reason.fillna("").str.startswith("metaclip:")
    assert passed_metaclip.sum() >= 3  # the 404, the flaky one and at least one photo
    assert stats["stages"]["Download"]["urls"] == passed_metaclip.sum()
    assert ledger.download_attempts.notna().eq(passed_metaclip).all()
    kept = ledger.status == "kept"
    assert kept.sum() >= 2 and ledger[kept].width.notna().all()
    assert stats["kept"] == stats["kept_in_shards"] == kept.sum() and stats["kept_as_urls"] == 0


def test_cache_is_reused_only_under_the_same_outcome_flags(http_server, tmp_path):
    def fetch(cfg):
        client = DownloadClient(cfg, str(tmp_path))
        try:
            return client.submit("00000-0000000000", [("u", http_server.url("/img/k.jpg"))]).result(timeout=30)[0]
        finally:
            client.close()

    base = DownloadSettings(allow_private=("all",))
    assert not fetch(base).from_cache
    again = fetch(DownloadSettings(allow_private=("all",), concurrency=3, timeout_s=9))  # speed flags only
    assert again.from_cache and again.image and http_server.hits("/img/k.jpg") == 1
    assert not fetch(DownloadSettings(allow_private=("all",), min_image_size=10)).from_cache  # another outcome rule
    assert http_server.hits("/img/k.jpg") == 2
    assert not fetch(base).from_cache and fetch(base).from_cache and http_server.hits("/img/k.jpg") == 3
    (tmp_path / CACHE_DIR / "00000-0000000000.parquet").write_bytes(b"not parquet")  # damaged: fetched again
    assert not fetch(base).from_cache and http_server.hits("/img/k.jpg") == 4


def test_a_killed_runs_half_written_cache_files_are_removed(tmp_path):
    folder = tmp_path / CACHE_DIR
    folder.mkdir()
    (folder / "00000-0000000000.parquet").write_bytes(b"complete")
    (folder / f"00000-0000000256.parquet{TMP_MARK}0123456789ab").write_bytes(b"half")
    remove_partial_files(str(tmp_path))
    assert sorted(os.listdir(folder)) == ["00000-0000000000.parquet"]
