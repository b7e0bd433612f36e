"""Download building blocks without a network: classifier, backoff, opt-out parsing, address
safety, content sniffing, and the flags' one-line errors."""
import asyncio
import socket

import aiohttp
import pytest

from curate.download.address import AddressPolicy
from curate.download.backoff import jitter, parse_retry_after, retry_delay
from curate.download.decode import decode, sniff
from curate.download.failures import HttpStatus, Refused, classify
from curate.download.options import DownloadSettings
from curate.download.robots import x_robots_disallows
from curate.run import main
from tests.http_fixture import IMAGES, png_bomb


@pytest.mark.parametrize("error,detail,transient", [
    (HttpStatus(404), "http_404", False),
    (HttpStatus(403), "http_403", False),
    (HttpStatus(429, 3.0), "http_429", True),
    (HttpStatus(408), "http_408", True),
    (HttpStatus(500), "http_500", True),
    (HttpStatus(503), "http_503", True),
    (asyncio.TimeoutError(), "timeout", True),
    (aiohttp.ServerTimeoutError("read"), "timeout", True),
    (aiohttp.ServerDisconnectedError(), "connection_error", True),
    (ConnectionResetError(), "connection_error", True),
    (aiohttp.ClientPayloadError("cut"), "connection_error", True),
    (aiohttp.InvalidURL("http://["), "invalid_url", False),
    (Refused("robots"), "robots", False),
    (Refused("robots_unreachable", transient=True), "robots_unreachable", True),
    (KeyError("surprise"), "error_KeyError", False),
])
def test_one_classifier_names_every_failure(error, detail, transient):
    failure = classify(error)
    assert (failure.detail, failure.transient) == (detail, transient)
    assert failure.message


def test_dns_errors_are_transient_only_for_a_resolver_hiccup():
    key = aiohttp.client_reqrep.ConnectionKey("h", 80, False, True, None, None, None)
    again = aiohttp.ClientConnectorDNSError(key, socket.gaierror(socket.EAI_AGAIN, "try again"))
    gone = aiohttp.ClientConnectorDNSError(key, socket.gaierror(socket.EAI_NONAME, "no such name"))
    assert classify(again) [:2] == ("dns_error", True)
    assert classify(gone)[:2] == ("dns_error", False)


def test_retry_after_is_parsed_and_honoured_as_a_floor():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert retry_delay(1, "u", 0.1, 60, retry_after=5) == 5
    assert retry_delay(1, "u", 0.1, 60, retry_after=61) is None  # left to a rerun


def test_backoff_doubles_with_bounded_deterministic_jitter():
    delays = [retry_delay(a, "uid", 1.0, 10.0) for a in range(1, 7)]
    for attempt, delay in enumerate(delays, 1):
        nominal = min(10.0, 2 ** (attempt - 1))
        assert nominal / 2 <= delay <= nominal
    assert delays == [retry_delay(a, "uid", 1.0, 10.0) for a in range(1, 7)]
    spread = {round(jitter(f"uid{i}", 1), 6) for i in range(100)}
    assert len(spread) > 90 and all(0 <= j < 1 for j in spread)


@pytest.mark.parametrize("values,expected", [
    (["noai"], True),
    (["noindex, nofollow"], True),
    (["NoImageAI"], True),
    (["nofollow"], False),
    (["curate: noai"], True),
    (["otherbot: noai, noimageai"], False),
    (["otherbot: noai", "curate: noimageindex"], True),
    (["max-image-preview:large", "unavailable_after: 25 Jun 2010 15:00:00 PST"], False),
    ([], False),
])
def test_x_robots_tag(values, expected):
    assert x_robots_disallows(values, "curate", ("noai", "noimageai", "noindex", "noimageindex")) is expected


@pytest.mark.parametrize("address,allowed", [
    ("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("192.168.0.1", False), ("172.16.5.4", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("240.0.0.1", False), ("::1", False), ("fe80::1", False), ("fc00::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:93.184.216.34", True),
])
def test_only_public_addresses_by_default(address, allowed):
    assert AddressPolicy().allowed(address) is allowed
    assert AddressPolicy(("all",)).allowed(address)


def test_allowed_networks_and_url_checks():
    policy = AddressPolicy(("127.0.0.0/8",))
    assert policy.allowed("127.0.0.2") and not policy.allowed("10.0.0.1")
    assert str(policy.check_url("http://127.0.0.1:8080/a.jpg")) == "http://127.0.0.1:8080/a.jpg"
    for url, detail in [("ftp://example.com/a.jpg", "unsupported_scheme"), ("file:///etc/passwd", "unsupported_scheme"),
                        ("http://10.0.0.1/a.jpg", "private_address"), ("http://[::1]/a.jpg", "private_address"),
                        ("http:///a.jpg", "invalid_url")]:
        with pytest.raises(Refused) as refused:
            AddressPolicy().check_url(url)
        assert refused.value.detail == detail, url


def test_content_is_sniffed_and_decoding_is_guarded():
    assert [sniff(IMAGES[f][:12]) for f in ("jpg", "png", "webp")] == ["jpg", "png", "webp"]
    assert sniff(b"<!doctype html>") is None and sniff(b"") is None
    cfg = DownloadSettings()
    decoded = decode(IMAGES["png"], cfg)
    assert (decoded.width, decoded.height, decoded.image_format) == (80, 60, "png")
    assert decoded.image == IMAGES["png"]  # no resize: the original bytes
    for body, detail, config in [
        (b"<html>", "not_image", cfg),
        (IMAGES["jpg"][:300], "decode_error", cfg),
        (png_bomb(), "too_many_pixels", cfg),
        (IMAGES["jpg"], "too_many_pixels", DownloadSettings(max_image_pixels=1000)),
        (IMAGES["jpg"], "too_small", DownloadSettings(min_image_size=61)),
    ]:
        with pytest.raises(Refused) as refused:
            decode(body, config)
        assert refused.value.detail == detail


def test_resize_uses_img2dataset_resizer():
    decoded = decode(IMAGES["png"], DownloadSettings(resize_mode="center_crop", image_size=32, encode_format="webp"))
    assert (decoded.width, decoded.height, decoded.image_format) == (32, 32, "webp")
    assert (decoded.original_width, decoded.original_height) == (80, 60)
    assert sniff(decoded.image[:12]) == "webp"


@pytest.mark.parametrize("args,message", [
    (["--download_concurrency", "0"], "--download_concurrency: must be >= 1"),
    (["--download_timeout", "0"], "--download_timeout: must be > 0"),
    (["--max_redirects", "-1"], "--max_redirects: must be >= 0"),
    (["--resize_mode", "squash"], "--resize_mode: 'squash' is not one of"),
    (["--encode_format", "gif"], "--encode_format"),
    (["--encode_format", "png", "--encode_quality", "50"], "--encode_quality: must be 0..9"),
    (["--allow_private_addresses", "not-a-net"], "--allow_private_addresses"),
    (["--user_agent_token", "cu rate"], "--user_agent_token"),
    (["--x_robots_tag_directives", "noai,no ml"], "--x_robots_tag_directives: 'no ml' is not a directive"),
])
def test_bad_download_flags_exit_2_with_one_line(args, message, tmp_path, capsys):
    urls = tmp_path / "urls.jsonl"
    urls.write_text('{"url": "http://example.com/a.jpg", "caption": "a dog"}\n')
    assert main(["--pipeline", "download", "--input", str(urls), *args, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_download_recipe_needs_a_url_list(tmp_path, capsys):
    assert main(["--pipeline", "download", "--output", str(tmp_path / "out")]) == 2
    assert "the download recipe needs a URL list" in capsys.readouterr().err
