"""TDMRep (W3C TDM Reservation Protocol, final report of May 2024): reserved works are not mined.

Two places say whether a rights holder reserved text-and-data mining of a resource:
- `/.well-known/tdmrep.json` of the origin: a JSON array of rules `{"location": PATTERN,
  "tdm-reservation": 0|1, "tdm-policy": URL}`. PATTERN is matched against the URL's path (and
  query) as robots.txt patterns are: a prefix, `*` any run of characters, `$` the end,
  case-sensitive, percent-encoded unreserved characters decoded first. The first rule that
  matches decides ("the most specific match is the first in sequence"); none = unset. The file
  is fetched once per origin (origin_cache.py); a missing, failing or malformed file means the
  site does not use the protocol. A URL whose rule reserves it is never requested.
- the response header `tdm-reservation: 1` (optional `tdm-policy`): the body is discarded
  unread. Headers override the file, but a URL the file reserves is never requested, so here
  a header can only add a reservation. `0` is "not reserved"; any other value is unset.
Either way the sample is `download:tdm_reservation` with the policy in `tdm_policy`.
"""
from __future__ import annotations

import json
import re
from typing import NamedTuple

from yarl import URL

from curate.download.failures import Reserved
from curate.download.origin_cache import OriginCache

WELL_KNOWN = ".well-known/tdmrep.json"
MAX_BYTES = 512 * 1024
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


class Rule(NamedTuple):
    pattern: re.Pattern
    reserved: bool | None  # tdm-reservation 1 -> True, 0 -> False, anything else -> unset
    policy: str | None


def _decode_unreserved(text: str) -> str:
    """Percent-encoded unreserved characters decoded, other escapes upper-cased (RFC 3986)."""
    def one(m: re.Match) -> str:
        char = chr(int(m.group(1), 16))
        return char if char in _UNRESERVED else f"%{m.group(1).upper()}"
    return _ESCAPE.sub(one, text)


def compile_location(location: str) -> re.Pattern:
    """A robots.txt-style path pattern as a prefix regex (`*` any run, a final `$` the end)."""
    anchored = location.endswith("$")
    body = _decode_unreserved(location[:-1] if anchored else location)
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return re.compile(regex + ("$" if anchored else ""), re.DOTALL)


def parse_rules(body: bytes) -> list[Rule]:
    """The file's rules in order; malformed rules are skipped, a malformed file has none."""
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return []
    rules = []
    for item in data if isinstance(data, list) else []:
        location = item.get("location") if isinstance(item, dict) else None
        if not isinstance(location, str) or not location:
            continue
        value = item.get("tdm-reservation")
        reserved = None
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            reserved = {1: True, 0: False, "1": True, "0": False}.get(value)
        policy = item.get("tdm-policy")
        rules.append(Rule(compile_location(location), reserved, policy if isinstance(policy, str) else None))
    return rules


def path_of(url: URL) -> str:
    path = url.raw_path or "/"
    return _decode_unreserved(path + (f"?{url.raw_query_string}" if url.raw_query_string else ""))


def first_match(rules: list[Rule], url: URL) -> Rule | None:
    path = path_of(url)
    return next((rule for rule in rules if rule.pattern.match(path)), None)


def check_headers(headers) -> None:
    """Raise Reserved when the response reserves TDM (`tdm-reservation: 1`)."""
    values = [v.strip() for v in headers.getall("tdm-reservation", [])]
    if "1" in values:
        raise Reserved(headers.get("tdm-policy"), "tdm-reservation header")


class TdmRepCache(OriginCache):
    """`await check(url)` raises Reserved when the origin's tdmrep.json reserves the URL."""

    async def check(self, url: URL) -> None:
        rule = first_match(await self.get(url) or [], url)
        if rule is not None and rule.reserved:
            raise Reserved(rule.policy, f"{url.host}/{WELL_KNOWN}")

    async def _fetch(self, origin: URL) -> list[Rule] | None:
        try:
            body = await self.get_text(origin / ".well-known" / "tdmrep.json", MAX_BYTES)
        except Exception:  # noqa: BLE001  (a file that cannot be read: the site does not use TDMRep)
            return None
        return parse_rules(body)
