"""Site owners' opt-outs: robots.txt (RFC 9309, fetched once per host) and X-Robots-Tag.

robots.txt is fetched once per origin per worker process and shared by every URL of that
origin (concurrent URLs wait for the one fetch). As RFC 9309 says: a 4xx means no rules; a
5xx, 429 or unreachable file means "disallow all" for now, which we record as the transient
`download:robots_unreachable` so a rerun tries again; a network failure fetching it (DNS,
connection, timeout) becomes the URL's own reason, as fetching the URL would fail alike. Rules are parsed with Protego (longest
match, `*` and `$` patterns).
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Awaitable, Callable

from yarl import URL

from curate.download.failures import HttpStatus, Refused

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least the first 500 KiB
CACHE_HOSTS = 100_000  # origins remembered per worker process
TTL_OK_S = 24 * 3600  # RFC 9309: do not use a cached robots.txt for more than 24 hours
TTL_UNREACHABLE_S = 300
# X-Robots-Tag directives whose value follows a colon (not a user agent before it)
_VALUED_DIRECTIVES = {"max-snippet", "max-image-preview", "max-video-preview", "unavailable_after"}

# (url, max_bytes) -> at most max_bytes of the body; raises HttpStatus, Refused or network errors
GetText = Callable[[URL, int], Awaitable[bytes]]


def x_robots_disallows(values: list[str], token: str, directives: tuple[str, ...]) -> bool:
    """Whether X-Robots-Tag header values opt out for us (`noai`, or `curate: noai`).

    A `name:` prefix scopes the directives after it to that user agent, as crawlers read it.
    """
    for value in values:
        scope = None
        for part in value.split(","):
            part = part.strip().lower()
            head, colon, tail = part.partition(":")
            if colon and head.strip() not in _VALUED_DIRECTIVES and " " not in head.strip():
                scope, part = head.strip(), tail.strip()
            if (scope is None or scope == token) and part in directives:
                return True
    return False


class _Entry:
    __slots__ = ("task", "expires")

    def __init__(self, task: asyncio.Task):
        self.task = task
        self.expires = float("inf")


class RobotsCache:
    """`await check(url)` raises Refused when robots.txt of the URL's origin disallows it."""

    def __init__(self, get_text: GetText, token: str):
        self.get_text = get_text
        self.token = token
        self.entries: OrderedDict[str, _Entry] = OrderedDict()
        self.fetches = 0

    async def check(self, url: URL) -> None:
        rules = await self._rules(url)
        if rules is None:
            raise Refused("robots_unreachable", f"robots.txt of {url.host} could not be read",
                          transient=True)
        if not rules.can_fetch(str(url), self.token):
            raise Refused("robots", f"robots.txt of {url.host} disallows it for {self.token!r}")

    async def _rules(self, url: URL):
        origin = str(url.origin())
        entry = self.entries.get(origin)
        if entry is None or entry.expires < time.monotonic():
            entry = self.entries[origin] = _Entry(asyncio.ensure_future(self._fetch(url.origin())))
            while len(self.entries) > CACHE_HOSTS:
                self.entries.popitem(last=False)
        self.entries.move_to_end(origin)
        try:
            # shielded: one waiter's deadline must not cancel the fetch others share
            rules = await asyncio.shield(entry.task)
        except Refused:
            entry.expires = min(entry.expires, time.monotonic() + TTL_UNREACHABLE_S)
            raise
        if entry.expires == float("inf"):
            entry.expires = time.monotonic() + (TTL_OK_S if rules is not None else TTL_UNREACHABLE_S)
        return rules

    async def _fetch(self, origin: URL):
        from protego import Protego

        self.fetches += 1
        try:
            body = await self.get_text(origin / "robots.txt", ROBOTS_MAX_BYTES)
        except HttpStatus as e:
            if 400 <= e.status < 500 and e.status != 429:
                return Protego.parse("")  # "unavailable": no rules
            return None
        except Refused as e:
            if e.detail == "private_address":
                raise
            return Protego.parse("")  # too many redirects, or to another scheme: "unavailable"
        # a network failure (DNS, connection, timeout, private address) would stop the URL
        # too: it propagates, so the ledger names it instead of "robots_unreachable"
        return Protego.parse(body.decode("utf-8", "replace"))
