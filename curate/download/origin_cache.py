"""A file fetched once per origin per worker process and shared by every URL of that origin.

robots.txt and TDMRep's /.well-known/tdmrep.json are both read this way: the first URL of an
origin starts the fetch, concurrent URLs wait for that one fetch (shielded, so one waiter's
deadline does not cancel it for the others), and the result is kept for a day (RFC 9309's
limit for robots.txt), a failure for five minutes.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable

from yarl import URL

from curate.download.failures import Refused

CACHE_HOSTS = 100_000  # origins remembered per worker process
TTL_OK_S = 24 * 3600
TTL_FAILED_S = 300

# (url, max_bytes) -> at most max_bytes of the body; raises HttpStatus, Refused or network errors
GetText = Callable[[URL, int], Awaitable[bytes]]


class _Entry:
    __slots__ = ("task", "expires")

    def __init__(self, task: asyncio.Task):
        self.task = task
        self.expires = float("inf")


class OriginCache:
    """`await self.get(url)`: what `_fetch(origin)` made of the origin's file (None: it failed)."""

    def __init__(self, get_text: GetText):
        self.get_text = get_text
        self.entries: OrderedDict[str, _Entry] = OrderedDict()
        self.fetches = 0

    async def _fetch(self, origin: URL) -> Any:
        raise NotImplementedError

    async def _counted_fetch(self, origin: URL) -> Any:
        self.fetches += 1
        return await self._fetch(origin)

    async def get(self, url: URL) -> Any:
        origin = str(url.origin())
        entry = self.entries.get(origin)
        if entry is None or entry.expires < time.monotonic():
            entry = self.entries[origin] = _Entry(asyncio.ensure_future(self._counted_fetch(url.origin())))
            while len(self.entries) > CACHE_HOSTS:
                self.entries.popitem(last=False)
        self.entries.move_to_end(origin)
        try:
            value = await asyncio.shield(entry.task)
        except Refused:
            entry.expires = min(entry.expires, time.monotonic() + TTL_FAILED_S)
            raise
        if entry.expires == float("inf"):
            entry.expires = time.monotonic() + (TTL_OK_S if value is not None else TTL_FAILED_S)
        return value
