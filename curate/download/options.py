"""Download flags, and the validated DownloadSettings the stage carries to workers.

The config is a small frozen dataclass: it is pickled with the graph, and everything heavy
(event loop, HTTP session, robots cache) is built from it on the worker.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import asdict, dataclass

from apache_beam.options.pipeline_options import PipelineOptions

from curate import __version__
from curate.errors import UsageError
from curate.filters.image_facts import MAX_PIXELS
from curate.io.safe_paths import DEFAULT_MAX_BYTES
from curate.flags import bool_flag, flag_defaults, one_of, str2bool

RESIZE_MODES = ("no", "keep_ratio", "center_crop", "border", "keep_ratio_largest")  # img2dataset's
ENCODE_FORMATS = ("jpg", "png", "webp")
# img2dataset's default opt-out directives; `noml` (a proposal) and others may be added
DEFAULT_DIRECTIVES = "noai,noimageai,noindex,noimageindex"
ALLOW_ALL = "all"


class DownloadOptions(PipelineOptions):
    """Downloading URL lists (HTTP limits, retries, opt-outs, address safety, resize)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add = parser.add_argument
        add("--download_concurrency", type=int, default=128, help="concurrent requests per worker process")
        add("--download_per_host", type=int, default=16,
            help="concurrent requests to one host per worker process")
        add("--download_timeout", type=float, default=20.0,
            help="seconds one request may take in all: connect, headers and body")
        add("--max_image_bytes", type=int, default=DEFAULT_MAX_BYTES,
            help="largest image accepted, in bytes: a download's body, and a file or tar member of "
                 "any input (checked before it is read)")
        add("--max_redirects", type=int, default=5, help="redirect hops followed")
        add("--download_retries", type=int, default=3,
            help="extra attempts for timeouts, connection errors, 408/429 and 5xx")
        add("--retry_base_delay", type=float, default=1.0,
            help="first backoff in seconds; doubled per attempt, with jitter")
        add("--retry_max_delay", type=float, default=60.0,
            help="longest backoff and longest Retry-After waited for; a longer Retry-After "
                 "leaves the sample to a rerun")
        add("--user_agent_token", default="curate",
            help="our name in robots.txt groups and X-Robots-Tag, and in the User-Agent")
        add("--user_agent_contact", default=None,
            help="contact added to the User-Agent (a URL or e-mail site owners can reach you at)")
        bool_flag(parser, "--respect_robots_txt", True, "skip URLs robots.txt disallows (download:robots)")
        bool_flag(parser, "--respect_x_robots_tag", True,
                  "drop images whose X-Robots-Tag opts out (download:x_robots_tag)")
        add("--x_robots_tag_directives", default=DEFAULT_DIRECTIVES,
            help="X-Robots-Tag directives that opt out, comma-separated (add noml to honour it too)")
        bool_flag(parser, "--respect_tdmrep", True,
                  "honour TDMRep reservations of text-and-data mining: a site's /.well-known/tdmrep.json "
                  "and the tdm-reservation response header (download:tdm_reservation)")
        add("--allow_private_addresses", nargs="?", const=ALLOW_ALL, default=None,
            help="fetch from private/loopback/link-local addresses too: alone for all of them, or "
                 "a comma-separated list of networks (e.g. 127.0.0.0/8); default: refused")
        add("--resize_mode", default="no",
            help=f"{' | '.join(RESIZE_MODES)} (img2dataset's Resizer); 'no' keeps the original bytes")
        add("--image_size", type=int, default=256, help="target size for --resize_mode")
        bool_flag(parser, "--resize_only_if_bigger", False, "only resize images larger than --image_size")
        add("--encode_format", default="jpg", help="format of resized images: jpg | png | webp")
        add("--encode_quality", type=int, default=95, help="quality of resized images (png: compression 0-9)")
        add("--min_image_size", type=int, default=0,
            help="drop images whose smaller side is below this (download:too_small)")
        add("--max_image_pixels", type=int, default=MAX_PIXELS,
            help="drop images with more pixels (decompression bombs; download:too_many_pixels)")
        bool_flag(parser, "--download_cache", True,
                  "keep each batch's results under OUTPUT/downloads so a rerun only retries "
                  "transient failures (delete the folder after the run to reclaim the space)")


_SPEED_FIELDS = {"concurrency", "per_host", "timeout_s", "retries", "retry_base_s", "retry_max_s",
                 "ua_contact", "cache"}


def _at_least(flag: str, value, low) -> None:
    if value is None or value < low:
        raise UsageError(f"--{flag}: must be >= {low}, got {value}")


def _networks(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    lowered = value.strip().lower()
    if lowered in (ALLOW_ALL, "true", "yes", "1"):
        return (ALLOW_ALL,)
    if lowered in ("false", "no", "0", ""):
        return ()
    networks = []
    for part in value.split(","):
        try:
            networks.append(str(ipaddress.ip_network(part.strip(), strict=False)))
        except ValueError:
            raise UsageError(f"--allow_private_addresses: {part.strip()!r} is not a network "
                             "(e.g. 127.0.0.0/8) or 'all'") from None
    return tuple(networks)


def _settings(o) -> dict:
    """Flag values (a DownloadOptions view or the parsed defaults) -> DownloadSettings's fields, checked."""
    for flag, low in (("download_concurrency", 1), ("download_per_host", 1), ("max_image_bytes", 1),
                      ("max_redirects", 0), ("download_retries", 0), ("image_size", 1),
                      ("min_image_size", 0), ("max_image_pixels", 1)):
        _at_least(flag, getattr(o, flag), low)
    for flag in ("download_timeout", "retry_base_delay", "retry_max_delay"):
        if not getattr(o, flag) > 0:
            raise UsageError(f"--{flag}: must be > 0 seconds, got {getattr(o, flag)}")
    one_of("--resize_mode", o.resize_mode, RESIZE_MODES)
    one_of("--encode_format", o.encode_format, ENCODE_FORMATS)
    high = 9 if o.encode_format == "png" else 100
    if not 0 <= o.encode_quality <= high:
        raise UsageError(f"--encode_quality: must be 0..{high} for {o.encode_format}, got {o.encode_quality}")
    for flag in ("user_agent_token", "user_agent_contact"):
        value = getattr(o, flag)
        if value is not None and (not value.strip() or any(c in value for c in "\r\n\x00")):
            raise UsageError(f"--{flag}: must be one non-empty line")
    if not o.user_agent_token.replace("-", "").replace("_", "").isalnum():
        raise UsageError("--user_agent_token: letters, digits, '-' and '_' only (robots.txt matches on it)")
    directives = tuple(d.strip().lower() for d in o.x_robots_tag_directives.split(",") if d.strip())
    for directive in directives:
        if not directive.replace("-", "").replace("_", "").isalnum():
            raise UsageError(f"--x_robots_tag_directives: {directive!r} is not a directive (e.g. noai,noml)")
    return dict(
        concurrency=o.download_concurrency, per_host=o.download_per_host, timeout_s=o.download_timeout,
        max_bytes=o.max_image_bytes, max_redirects=o.max_redirects, retries=o.download_retries,
        retry_base_s=o.retry_base_delay, retry_max_s=o.retry_max_delay,
        ua_token=o.user_agent_token.strip().lower(), ua_contact=o.user_agent_contact,
        robots_txt=str2bool(o.respect_robots_txt), x_robots_tag=str2bool(o.respect_x_robots_tag),
        tdmrep=str2bool(o.respect_tdmrep),
        directives=directives, allow_private=_networks(o.allow_private_addresses),
        resize_mode=o.resize_mode, image_size=o.image_size,
        resize_only_if_bigger=str2bool(o.resize_only_if_bigger), encode_format=o.encode_format,
        encode_quality=o.encode_quality, min_image_size=o.min_image_size,
        max_image_pixels=o.max_image_pixels, cache=str2bool(o.download_cache),
    )


_DEFAULTS = _settings(flag_defaults(DownloadOptions))


@dataclass(frozen=True)
class DownloadSettings:
    """The checked download settings; a field left out is its flag's default (tests name a few)."""

    concurrency: int = _DEFAULTS["concurrency"]
    per_host: int = _DEFAULTS["per_host"]
    timeout_s: float = _DEFAULTS["timeout_s"]
    max_bytes: int = _DEFAULTS["max_bytes"]
    max_redirects: int = _DEFAULTS["max_redirects"]
    retries: int = _DEFAULTS["retries"]
    retry_base_s: float = _DEFAULTS["retry_base_s"]
    retry_max_s: float = _DEFAULTS["retry_max_s"]
    ua_token: str = _DEFAULTS["ua_token"]
    ua_contact: str | None = _DEFAULTS["ua_contact"]
    robots_txt: bool = _DEFAULTS["robots_txt"]
    x_robots_tag: bool = _DEFAULTS["x_robots_tag"]
    tdmrep: bool = _DEFAULTS["tdmrep"]
    directives: tuple[str, ...] = _DEFAULTS["directives"]
    allow_private: tuple[str, ...] = _DEFAULTS["allow_private"]  # networks, or (ALLOW_ALL,)
    resize_mode: str = _DEFAULTS["resize_mode"]
    image_size: int = _DEFAULTS["image_size"]
    resize_only_if_bigger: bool = _DEFAULTS["resize_only_if_bigger"]
    encode_format: str = _DEFAULTS["encode_format"]
    encode_quality: int = _DEFAULTS["encode_quality"]
    min_image_size: int = _DEFAULTS["min_image_size"]
    max_image_pixels: int = _DEFAULTS["max_image_pixels"]
    cache: bool = _DEFAULTS["cache"]
    blocklists: str | None = None  # the run's block-list manifest (curate.blocklist.build)

    @property
    def user_agent(self) -> str:
        contact = f"; +{self.ua_contact}" if self.ua_contact else ""
        return (f"{self.ua_token}/{__version__} (image-text dataset curation; honours robots.txt, "
                f"X-Robots-Tag and TDMRep for '{self.ua_token}'{contact})")

    @property
    def resizes(self) -> bool:
        return self.resize_mode != "no"

    def fingerprint(self) -> str:
        """What decides a sample's outcome (not how fast it is fetched): cached results made
        under another fingerprint are not reused."""
        decisive = {k: v for k, v in asdict(self).items() if k not in _SPEED_FIELDS}
        return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]


def download_settings(options: PipelineOptions) -> DownloadSettings:
    """The validated config; UsageError (exit 2) on a bad flag, before the pipeline starts."""
    return DownloadSettings(**_settings(options.view_as(DownloadOptions)))
