"""Fetch one URL: policy checks, redirects, a total deadline, a byte cap, sniffing, retries.

One attempt is one request chain (redirects followed by hand, so every hop's address, scheme,
block lists, robots.txt and TDMRep file are checked before it is requested) under one deadline
covering connect, headers and body. A listed image is refused before it becomes an outcome. A body is
read as a stream: past --max_image_bytes it is abandoned, and one whose first bytes are not an
image's is abandoned at once. Transient failures are retried with backoff; the result is an
Outcome whatever happens.
"""
from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from concurrent.futures import Executor

import aiohttp
from yarl import URL

from curate.download.address import AddressPolicy
from curate.download.backoff import parse_retry_after, retry_delay
from curate.download.decode import SNIFF_BYTES, decode, sniff
from curate.blocklist.check import BlockCheck, ImageVerdict
from curate.download.failures import Blocked, HttpStatus, Refused, Reserved, classify
from curate.download.options import DownloadSettings
from curate.download.outcome import Outcome
from curate.download.robots import RobotsCache, x_robots_disallows
from curate.download.tdmrep import TdmRepCache, check_headers

REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 65536  # read granularity: a body is abandoned at most this far past the cap


class HostLimiter:
    """At most `per_host` concurrent requests per host; a host's semaphore lives while in use."""

    def __init__(self, per_host: int):
        self.per_host = per_host
        self.slots: dict[str, list] = {}  # host -> [semaphore, users]

    @asynccontextmanager
    async def slot(self, host: str):
        entry = self.slots.get(host)
        if entry is None:
            entry = self.slots[host] = [asyncio.Semaphore(self.per_host), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self.slots[host]


class _Attempt:
    """What one attempt saw, kept for the ledger even when it fails."""

    __slots__ = ("status", "received", "final_url")

    def __init__(self):
        self.status: int | None = None
        self.received = 0
        self.final_url: str | None = None


def _marks(error: BaseException) -> dict:
    """Outcome fields a refusal carries besides its reason (the list, the TDM policy)."""
    if isinstance(error, Blocked):
        return {"block_list": error.list_name, "block_distance": error.distance, "pdq": error.pdq,
                "pdq_quality": error.pdq_quality}
    if isinstance(error, Reserved):
        return {"tdm_policy": error.policy}
    return {}


def checked_decode(body: bytes, cfg: DownloadSettings, blocks: BlockCheck | None):
    """The decoded image and its block-list verdict; Blocked before anything else is decided,
    so a listed image never becomes an outcome with bytes (nor a cache row)."""
    verdict = blocks.match_image(body) if blocks is not None else ImageVerdict(None)
    if verdict.match is not None:
        raise Blocked(verdict.match.list, verdict.match.distance, verdict.pdq, verdict.pdq_quality)
    return decode(body, cfg), verdict


class Fetcher:
    def __init__(self, session: aiohttp.ClientSession, cfg: DownloadSettings, policy: AddressPolicy,
                 cpu: Executor, blocks: BlockCheck | None = None):
        self.session = session
        self.cfg = cfg
        self.policy = policy
        self.cpu = cpu
        self.blocks = blocks
        self.robots = RobotsCache(self._site_file, cfg.ua_token) if cfg.robots_txt else None
        self.tdmrep = TdmRepCache(self._site_file) if cfg.tdmrep else None
        self.requests = asyncio.Semaphore(cfg.concurrency)
        self.hosts = HostLimiter(cfg.per_host)

    async def download(self, uid: str, url: str, earlier: Outcome | None = None) -> Outcome:
        """Fetch and decode with retries; attempts add to those of an earlier run's outcome."""
        cfg = self.cfg
        started = time.monotonic()
        attempts = earlier.attempts if earlier else 0
        for attempt in range(1, cfg.retries + 2):
            seen = _Attempt()
            try:
                body = await self._attempt(url, seen)
                image, verdict = await asyncio.get_running_loop().run_in_executor(
                    self.cpu, checked_decode, body, cfg, self.blocks)
                return Outcome(uid, http_status=seen.status, download_bytes=seen.received,
                               attempts=attempts + attempt, elapsed_s=time.monotonic() - started,
                               final_url=seen.final_url, image=image.image, width=image.width,
                               height=image.height, image_format=image.image_format,
                               sha256=image.sha256, original_width=image.original_width,
                               original_height=image.original_height, pdq=verdict.pdq,
                               pdq_quality=verdict.pdq_quality)
            except Exception as e:  # noqa: BLE001  (every failure becomes a classified outcome)
                failure, marks = classify(e), _marks(e)
            delay = None
            if failure.transient and attempt <= cfg.retries:
                delay = retry_delay(attempt, uid, cfg.retry_base_s, cfg.retry_max_s, failure.retry_after)
            if delay is None:
                return Outcome(uid, failure.detail, failure.transient, seen.status, seen.received,
                               attempts + attempt, time.monotonic() - started, seen.final_url,
                               failure.message, **marks)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _check_listed(self, url: URL) -> None:
        match = self.blocks.match_url(str(url)) if self.blocks is not None else None
        if match is not None:
            raise Blocked(match.list, match.distance)

    async def _site_rules(self, url: URL) -> None:
        """robots.txt and tdmrep.json of the URL's origin (each fetched once per origin)."""
        if self.robots is not None:
            await self.robots.check(url)
        if self.tdmrep is not None:
            await self.tdmrep.check(url)

    async def _attempt(self, url: str, seen: _Attempt) -> bytes:
        target = self.policy.check_url(url)
        self._check_listed(target)
        await self._site_rules(target)  # before the deadline: the fetches are shared per host
        async with self.hosts.slot(target.host), self.requests:
            return await asyncio.wait_for(self._follow(target, seen), self.cfg.timeout_s)

    async def _follow(self, url: URL, seen: _Attempt, *, limit: int | None = None,
                      image: bool = True) -> bytes:
        """GET following redirects by hand; every hop is checked like the first URL."""
        cfg = self.cfg
        for hop in range(cfg.max_redirects + 1):
            if hop:
                seen.final_url = str(url)  # where it went, even when refused
                url = self.policy.check_url(url)
                if image:
                    self._check_listed(url)
                    await self._site_rules(url)
            async with self.session.get(url, allow_redirects=False) as response:
                seen.status = response.status
                location = response.headers.get("Location")
                if response.status in REDIRECTS and location:
                    url = url.join(URL(location))
                    continue
                if not 200 <= response.status < 300:
                    raise HttpStatus(response.status, parse_retry_after(response.headers.get("Retry-After")))
                if image and cfg.x_robots_tag and x_robots_disallows(
                        response.headers.getall("X-Robots-Tag", []), cfg.ua_token, cfg.directives):
                    raise Refused("x_robots_tag", ", ".join(response.headers.getall("X-Robots-Tag")))
                if image and cfg.tdmrep:
                    check_headers(response.headers)  # before the body: a reserved work is not read
                return await _read_body(response, seen, limit or cfg.max_bytes, image)
        raise Refused("too_many_redirects", f"more than {cfg.max_redirects} redirects")

    async def _site_file(self, url: URL, limit: int) -> bytes:
        """robots.txt or tdmrep.json: followed like an image, cut at `limit`, under the deadline."""
        self.policy.check_url(url)
        return await asyncio.wait_for(self._follow(url, _Attempt(), limit=limit, image=False),
                                      self.cfg.timeout_s)


async def _read_body(response: aiohttp.ClientResponse, seen: _Attempt, limit: int, image: bool) -> bytes:
    """The body, streamed: past `limit` an image is refused (too_large) and other files are
    cut; an image whose first bytes are not an image's is refused at once (not_image)."""
    if image and response.content_length is not None and response.content_length > limit:
        raise Refused("too_large", f"Content-Length {response.content_length} > {limit}")
    chunks: list[bytes] = []
    sniffed = not image
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        seen.received += len(chunk)
        if seen.received > limit:
            if image:
                raise Refused("too_large", f"body past {limit} bytes")
            chunks.append(chunk[:len(chunk) - (seen.received - limit)])
            break
        chunks.append(chunk)
        if not sniffed and seen.received >= SNIFF_BYTES:
            _check_sniff(b"".join(chunks)[:SNIFF_BYTES], response)
            sniffed = True
    body = b"".join(chunks)
    if not sniffed:
        _check_sniff(body, response)
    return body


def _check_sniff(head: bytes, response: aiohttp.ClientResponse) -> None:
    if sniff(head) is None:
        raise Refused("not_image", f"Content-Type {response.content_type!r}, starts with {head[:SNIFF_BYTES]!r}")
