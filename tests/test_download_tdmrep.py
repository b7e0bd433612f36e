"""TDMRep and X-Robots-Tag directives in the download stage, offline against the loopback server.

The protocol's rules (W3C TDM Reservation Protocol, May 2024): /.well-known/tdmrep.json rules
matched like robots.txt paths (prefix, `*`, `$`, case-sensitive), the first match decides;
`tdm-reservation: 1` on a response reserves the work; a missing or broken file is "unset".
"""
import json

import pyarrow.parquet as pq
import pytest
from yarl import URL

from curate.download.failures import Reserved
from curate.download.tdmrep import check_headers, first_match, parse_rules
from tests.conftest import read_ledger, run_curate
from tests.http_fixture import http_server  # noqa: F401  (fixture)

FAST = ["--download_timeout", "5", "--download_retries", "0", "--batch_size", "4",
        "--allow_private_addresses", "127.0.0.0/8"]
POLICY = "https://rights.example/policy.json"
RULES = [
    {"location": "/reserved/", "tdm-reservation": 1, "tdm-policy": POLICY},
    {"location": "/open/keep/*.png$", "tdm-reservation": 0},
    {"location": "/open/keep/", "tdm-reservation": 1},  # after the rule above: .png stays open
    {"location": "/open/%7Ealice/", "tdm-reservation": 1},
]


def _rule(rules, url):
    match = first_match(parse_rules(json.dumps(rules).encode()), URL(url))
    return None if match is None else (match.reserved, match.policy)


@pytest.mark.parametrize("url,expected", [
    ("http://h/reserved/a.jpg", (True, POLICY)),
    ("http://h/reserved", None),  # a prefix of the path, not of the pattern
    ("http://h/Reserved/a.jpg", None),  # case-sensitive
    ("http://h/open/keep/x.png", (False, None)),  # the first match decides
    ("http://h/open/keep/x.png?size=2", (True, None)),  # `$`: the png rule ends at .png
    ("http://h/open/keep/x.jpg", (True, None)),
    ("http://h/open/keep/deep/er/x.png", (False, None)),  # `*` spans slashes
    ("http://h/open/~alice/p.jpg", (True, None)),  # %7E (an unreserved character) is ~
    ("http://h/open/%7ealice/p.jpg", (True, None)),
    ("http://h/elsewhere.jpg", None),
])
def test_well_known_rules_match_like_robots_txt_and_the_first_match_decides(url, expected):
    assert _rule(RULES, url) == expected


def test_a_broken_file_or_rule_means_unset():
    assert parse_rules(b"not json") == [] and parse_rules(b'{"location": "/"}') == []
    rules = [{"location": 5}, {"tdm-reservation": 1}, {"location": "/a/", "tdm-reservation": [1]},
             {"location": "/a/", "tdm-reservation": 1}]
    assert _rule(rules, "http://h/a/x") == (None, None)  # the first valid rule has no valid value
    assert _rule([{"location": "/", "tdm-reservation": "1"}], "http://h/x") == (True, None)
    assert _rule([{"location": "/", "tdm-reservation": 2}], "http://h/x") == (None, None)


def test_the_response_header_reserves_only_with_1():
    class Headers(dict):
        def getall(self, name, default):
            return [self[name]] if name in self else default

    with pytest.raises(Reserved) as reserved:
        check_headers(Headers({"tdm-reservation": " 1", "tdm-policy": POLICY}))
    assert reserved.value.policy == POLICY and reserved.value.detail == "tdm_reservation"
    for value in ("0", "yes", ""):
        check_headers(Headers({"tdm-reservation": value}))  # 0 = not reserved, else unset


def _urls(tmp_path, server, paths, name="urls.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps({"url": server.url(p), "caption": f"picture {i}"}) + "\n"
                            for i, p in enumerate(paths)))
    return str(path)


ROUTES = {
    "/reserved/a.jpg": ("download:tdm_reservation", POLICY),  # by the file: never requested
    "/open/keep/b.jpg": ("download:tdm_reservation", None),
    "/open/keep/c.png": (None, None),
    "/open/free/d.jpg": (None, None),
    "/tdm_header/1.jpg": ("download:tdm_reservation", POLICY),  # by the header: body dropped
    "/tdm_header/0.jpg": (None, None),
    "/tdm_header/x.jpg": (None, None),
}


def test_download_honours_tdmrep_file_and_header(http_server, tmp_path):
    http_server.state.tdmrep = json.dumps(RULES).encode()
    out = tmp_path / "out"
    stats = run_curate("--pipeline", "download", "--input", _urls(tmp_path, http_server, ROUTES), *FAST, output=out)
    ledger = read_ledger(out)
    rows = {u.removeprefix(http_server.url("")): r for u, r in zip(ledger.url, ledger.to_dict("records"))}
    for path, (reason, policy) in ROUTES.items():
        assert (rows[path]["reason"], rows[path]["tdm_policy"]) == (reason, policy), path
    assert http_server.hits("/.well-known/tdmrep.json") == 1  # once for the host, like robots.txt
    assert http_server.hits("/reserved/a.jpg") == http_server.hits("/open/keep/b.jpg") == 0
    assert http_server.hits("/tdm_header/1.jpg") == 1
    assert stats["dropped_by_reason"] == {"download:tdm_reservation": 3}
    # the header-reserved body is kept nowhere: its cached outcome has no image
    cached = pq.read_table(out / "downloads").to_pylist()
    reserved = [o for o in cached if o["tdm_policy"] == POLICY]
    assert len(reserved) == 2 and all(o["image"] is None for o in reserved)
    assert "TDMRep" in next(iter(http_server.state.user_agents))

    off = tmp_path / "off"
    run_curate("--pipeline", "download", "--input", _urls(tmp_path, http_server, ROUTES), *FAST,
               "--respect_tdmrep=false", output=off)
    assert read_ledger(off).reason.isna().all()
    assert http_server.hits("/.well-known/tdmrep.json") == 1  # not asked again


def test_a_missing_or_failing_file_means_the_site_does_not_use_the_protocol(http_server, tmp_path):
    http_server.state.tdmrep = b"<html>oops</html>"
    out = tmp_path / "out"
    run_curate("--pipeline", "download", "--input", _urls(tmp_path, http_server, ["/reserved/a.jpg"]), *FAST,
               output=out)
    assert read_ledger(out).reason.isna().all()


def test_x_robots_tag_directives_are_a_flag(http_server, tmp_path):
    paths = ["/noml.jpg", "/noai.jpg"]
    out = tmp_path / "default"
    run_curate("--pipeline", "download", "--input", _urls(tmp_path, http_server, paths), *FAST, output=out)
    assert read_ledger(out).sort_values("url").reason.tolist() == ["download:x_robots_tag", None]
    out = tmp_path / "noml"
    run_curate("--pipeline", "download", "--input", _urls(tmp_path, http_server, paths), *FAST,
               "--x_robots_tag_directives", "noml", output=out)
    assert read_ledger(out).sort_values("url").reason.tolist() == [None, "download:x_robots_tag"]
