"""Every route of the loopback server ends as the right ledger row of a `download` run."""
import json
import tarfile

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that

from curate.download.client import DownloadClient
from curate.download.options import DownloadSettings
from curate.download.stage import Download
from curate.sample import Sample, SampleBatch
from tests.conftest import read_ledger, run_curate
from tests.http_fixture import IMAGES, http_server  # noqa: F401  (fixture)

FAST = ["--download_timeout", "1", "--download_retries", "1", "--retry_base_delay", "0.05",
        "--max_image_bytes", "200000", "--batch_size", "4"]
LOOPBACK = ["--allow_private_addresses", "127.0.0.0/8"]

# route -> (reason, http_status, attempts); reason None = kept
ROUTES = {
    "/img/a.jpg": (None, 200, 1),
    "/img/b.png": (None, 200, 1),
    "/img/c.webp": (None, 200, 1),
    "/wrong_type.jpg": (None, 200, 1),  # sniffed, not trusted from Content-Type
    "/otherbot_noai.jpg": (None, 200, 1),
    "/flaky/1": (None, 200, 2),  # 500, then the image
    "/busy/1": (None, 200, 2),  # 429 + Retry-After: 1, then the image
    "/redirect/3": (None, 200, 1),
    "/404": ("download:http_404", 404, 1),
    "/always503/a": ("download:http_503", 503, 2),
    "/slow.jpg": ("download:timeout", 200, 2),
    "/endless.jpg": ("download:too_large", 200, 1),
    "/declared_huge.jpg": ("download:too_large", 200, 1),
    "/page.jpg": ("download:not_image", 200, 1),
    "/truncated.jpg": ("download:decode_error", 200, 1),
    "/bomb.png": ("download:too_many_pixels", 200, 1),
    "/redirect/9": ("download:too_many_redirects", 302, 1),
    "/to_private": ("download:private_address", 302, 1),
    "/to_file": ("download:unsupported_scheme", 302, 1),
    "/private/x.jpg": ("download:robots", None, 1),
    "/noai.jpg": ("download:x_robots_tag", 200, 1),
    "/reset": ("download:connection_error", None, 2),
}
MALFORMED = {"not a url": ("download:unsupported_scheme", None, 1), "http://": ("download:invalid_url", None, 1)}


def _url_list(path, urls):
    with open(path, "w") as f:
        for i, url in enumerate(urls):
            f.write(json.dumps({"url": url, "caption": f"photo {i} of a dog", "row": i}) + "\n")
    return str(path)


def _rows_by_path(ledger, server):
    prefix = server.url("")
    return {url.removeprefix(prefix): row for url, row in zip(ledger.url, ledger.to_dict("records"))}


def test_every_route_ends_as_the_right_ledger_row(http_server, tmp_path):
    urls = [http_server.url(p) for p in ROUTES] + list(MALFORMED)
    out = tmp_path / "out"
    stats = run_curate("--pipeline", "download", "--input", _url_list(tmp_path / "urls.jsonl", urls),
                       *FAST, *LOOPBACK, "--user_agent_contact", "mailto:data@example.org", output=out)
    rows = _rows_by_path(read_ledger(out), http_server)
    assert sorted(rows) == sorted({**ROUTES, **MALFORMED})
    for path, (reason, status, attempts) in {**ROUTES, **MALFORMED}.items():
        row = rows[path]
        got = (row["reason"], None if row["http_status"] != row["http_status"] else row["http_status"],
               row["download_attempts"])
        assert got == (reason, status, attempts), path
        assert row["download_error"] is None if reason is None else row["download_error"], path
    assert rows["/redirect/3"]["download_final_url"] == http_server.url("/img/chain.jpg")
    assert rows["/to_private"]["download_final_url"] == "http://169.254.169.254/latest/meta-data/"
    assert rows["/img/b.png"]["image_format"] == "png" and rows["/img/c.webp"]["image_format"] == "webp"
    assert rows["/img/a.jpg"]["sha256"] and rows["/img/a.jpg"]["width"] == 80 and rows["/img/a.jpg"]["row"] == 0
    assert rows["/endless.jpg"]["download_bytes"] <= 200000 + 65536  # abandoned at the cap

    # politeness: every request names the project and the contact; robots.txt once for the host, the disallowed URL never requested,
    # the 429's Retry-After (1 s) waited for before the retry
    agent, = http_server.state.user_agents
    assert agent.startswith("curate/") and "mailto:data@example.org" in agent
    assert http_server.hits("/robots.txt") == 1 and http_server.hits("/private/x.jpg") == 0
    first, second = http_server.state.times["/busy/1"]
    assert second - first >= 1.0

    kept = [p for p, (r, _, _) in ROUTES.items() if r is None]
    assert stats["kept_in_shards"] == len(kept)
    with tarfile.open(out / "shards" / "00000.tar") as tar:
        images = {m.name.split(".")[0]: tar.extractfile(m).read() for m in tar if not m.name.endswith((".txt", ".json"))}
    assert images[rows["/img/b.png"]["uid"]] == IMAGES["png"]  # original bytes by default
    facts = stats["stages"]["Download"]
    assert facts["urls"] == len(ROUTES) + len(MALFORMED) and facts["ok"] == len(kept)
    assert facts["by_reason"] == {k: v for k, v in stats["dropped_by_reason"].items()}
    assert facts["hosts"] == 2 and facts["top_hosts"][0]["host"] == "127.0.0.1"


def test_opt_outs_can_be_disabled_and_private_addresses_are_refused_by_default(http_server, tmp_path):
    paths = ["/private/y.jpg", "/noai.jpg"]
    out = tmp_path / "out"
    run_curate("--pipeline", "download", "--input", _url_list(tmp_path / "a.jsonl", [http_server.url(p) for p in paths]),
               *FAST, *LOOPBACK, "--respect_robots_txt=false", "--respect_x_robots_tag=false", output=out)
    assert read_ledger(out).reason.isna().all()
    assert http_server.hits("/robots.txt") == 0

    # no --allow_private_addresses: neither a literal loopback IP nor a name resolving to one
    refused = [http_server.url("/img/d.jpg"), http_server.url("/img/e.jpg", host="localhost")]
    out = tmp_path / "refused"
    run_curate("--pipeline", "download", "--input", _url_list(tmp_path / "b.jsonl", refused), *FAST, output=out)
    assert (read_ledger(out).reason == "download:private_address").all()
    assert http_server.hits("/img/d.jpg") == http_server.hits("/img/e.jpg") == 0


def test_resize_and_min_size_through_the_stage(http_server, tmp_path):
    urls = [http_server.url("/img/f.png")]
    out = tmp_path / "out"
    run_curate("--pipeline", "download", "--input", _url_list(tmp_path / "urls.jsonl", urls), *FAST, *LOOPBACK,
               "--resize_mode", "keep_ratio", "--image_size", "30", "--encode_format", "jpg", output=out)
    row = read_ledger(out).iloc[0]
    assert (row.width, row.height, row.image_format) == (40, 30, "jpg")
    assert (row.original_width, row.original_height) == (80, 60)
    out = tmp_path / "small"
    run_curate("--pipeline", "download", "--input", _url_list(tmp_path / "urls.jsonl", urls), *FAST, *LOOPBACK,
               "--min_image_size", "100", output=out)
    assert read_ledger(out).reason.tolist() == ["download:too_small"]


def test_samples_with_images_pass_untouched(http_server):
    has_image = Sample(uid="a" * 32, url=http_server.url("/img/never.jpg"), caption="x", image=IMAGES["jpg"])
    no_url = Sample(uid="b" * 32, caption="y")
    to_fetch = Sample(uid="c" * 32, url=http_server.url("/img/g.jpg"), caption="z")
    cfg = DownloadSettings(allow_private=("127.0.0.0/8",), cache=False)

    def check(batches):
        samples = {s.uid: s for b in batches for s in b.samples}
        assert samples["a" * 32].image == IMAGES["jpg"] and "http_status" not in samples["a" * 32].values
        assert samples["b" * 32].image is None and samples["b" * 32].values == {}
        assert samples["c" * 32].image == IMAGES["jpg"] and samples["c" * 32].values["http_status"] == 200

    with beam.Pipeline(runner="apache_beam.runners.portability.fn_api_runner.FnApiRunner") as p:
        out = (p | beam.Create([SampleBatch("00000-000000", [has_image, no_url]),
                                SampleBatch("00000-000002", [to_fetch])]) | Download(cfg, None))
        assert_that(out.kept, check)
    assert http_server.hits("/img/never.jpg") == 0


@pytest.mark.parametrize("status,detail", [(404, None), (503, "robots_unreachable"), (429, "robots_unreachable")])
def test_robots_txt_status_follows_rfc_9309(http_server, status, detail):
    """4xx: no rules; 5xx or 429: disallow everything for now (transient, a rerun retries)."""
    http_server.state.robots_status = status
    client = DownloadClient(DownloadSettings(allow_private=("all",), cache=False, retries=0), None)
    try:
        outcomes = client.submit("b", [("u1", http_server.url("/private/z.jpg")),
                                       ("u2", http_server.url("/img/z.jpg"))]).result(timeout=30)
    finally:
        client.close()
    assert [o.detail for o in outcomes] == [detail, detail]
    assert all(o.transient for o in outcomes) is (detail is not None)
    assert http_server.hits("/robots.txt") == 1
    assert http_server.hits("/img/z.jpg") == (1 if detail is None else 0)
