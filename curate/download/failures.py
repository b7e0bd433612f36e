"""One classifier from whatever went wrong to a reason detail, and whether trying again may help.

Every failure of a fetch ends here, so the retry loop, the resume logic and the ledger agree on
what `download:<detail>` means and on which details are transient (timeouts, connection
errors, 408/425/429, 5xx, an unreachable robots.txt).
"""
from __future__ import annotations

import asyncio
import socket
import ssl
from typing import NamedTuple

import aiohttp

TRANSIENT_STATUSES = frozenset({408, 425, 429})


class Refused(Exception):
    """We decided not to fetch or keep this URL (policy, limits, content)."""

    def __init__(self, detail: str, message: str = "", transient: bool = False):
        super().__init__(message or detail)
        self.detail = detail
        self.transient = transient


class Blocked(Refused):
    """The URL (or a redirect's target) or the image is on a block list: never fetched, never kept."""

    def __init__(self, list_name: str, distance: int, pdq: str | None = None, pdq_quality: int | None = None):
        super().__init__("blocked", f"on the block list {list_name!r}")
        self.list_name, self.distance = list_name, distance
        self.pdq, self.pdq_quality = pdq, pdq_quality


class Reserved(Refused):
    """The rights holder reserved text-and-data mining (TDMRep): not fetched, or its body dropped."""

    def __init__(self, policy: str | None, where: str):
        super().__init__("tdm_reservation", f"TDM rights reserved ({where})")
        self.policy = policy


class HttpStatus(Exception):
    """The final response (after redirects) was not a success."""

    def __init__(self, status: int, retry_after: float | None = None):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class Failure(NamedTuple):
    detail: str  # the part after `download:` in the reason
    transient: bool  # worth another attempt now (with backoff) and on a rerun
    message: str  # a short human-readable cause for the ledger
    retry_after: float | None = None  # seconds the server asked us to wait
    status: int | None = None


def status_is_transient(status: int) -> bool:
    return status in TRANSIENT_STATUSES or 500 <= status <= 599


def _dns(e: aiohttp.ClientConnectorDNSError) -> tuple[str, bool]:
    cause = e.__cause__ or e.os_error
    # EAI_AGAIN is a resolver hiccup; a name that does not exist stays so on a retry
    return "dns_error", getattr(cause, "errno", None) == socket.EAI_AGAIN


# First matching class wins: subclasses before their bases.
_RULES: list[tuple[type | tuple[type, ...], object]] = [
    ((asyncio.TimeoutError, TimeoutError), ("timeout", True)),
    (aiohttp.ClientConnectorDNSError, _dns),
    ((aiohttp.ClientSSLError, ssl.SSLError), ("tls_error", False)),
    ((aiohttp.InvalidURL, ValueError), ("invalid_url", False)),
    ((aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, ConnectionError, OSError),
     ("connection_error", True)),
    (aiohttp.ClientResponseError, ("bad_response", False)),  # e.g. a malformed status line
]


def classify(error: BaseException) -> Failure:
    message = f"{type(error).__name__}: {error}"[:300]
    if isinstance(error, Refused):
        return Failure(error.detail, error.transient, message)
    if isinstance(error, HttpStatus):
        return Failure(f"http_{error.status}", status_is_transient(error.status), message,
                       error.retry_after, error.status)
    for types, rule in _RULES:
        if isinstance(error, types):
            detail, transient = rule(error) if callable(rule) else rule
            return Failure(detail, transient, message)
    return Failure(f"error_{type(error).__name__}", False, message)
