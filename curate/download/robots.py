"""Site owners' opt-outs: robots.txt (RFC 9309, fetched once per host) and X-Robots-Tag.

robots.txt is fetched once per origin per worker process and shared by every URL of that
origin (concurrent URLs wait for the one fetch: origin_cache.py). As RFC 9309 says: a 4xx means no rules; a
5xx, 429 or unreachable file means "disallow all" for now, which we record as the transient
`download:robots_unreachable` so a rerun tries again; a network failure fetching it (DNS,
connection, timeout) becomes the URL's own reason, as fetching the URL would fail alike. Rules are parsed with Protego (longest
match, `*` and `$` patterns).
"""
from __future__ import annotations

from yarl import URL

from curate.download.failures import HttpStatus, Refused
from curate.download.origin_cache import GetText, OriginCache

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least the first 500 KiB
# X-Robots-Tag directives whose value follows a colon (not a user agent before it)
_VALUED_DIRECTIVES = {"max-snippet", "max-image-preview", "max-video-preview", "unavailable_after"}


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


class RobotsCache(OriginCache):
    """`await check(url)` raises Refused when robots.txt of the URL's origin disallows it."""

    def __init__(self, get_text: GetText, token: str):
        super().__init__(get_text)
        self.token = token

    async def check(self, url: URL) -> None:
        rules = await self.get(url)
        if rules is None:
            raise Refused("robots_unreachable", f"robots.txt of {url.host} could not be read",
                          transient=True)
        if not rules.can_fetch(str(url), self.token):
            raise Refused("robots", f"robots.txt of {url.host} disallows it for {self.token!r}")

    async def _fetch(self, origin: URL):
        from protego import Protego

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
