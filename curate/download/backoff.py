"""How long to wait before the next attempt: exponential backoff, jitter, Retry-After.

The jitter is a keyed hash of (uid, attempt), not a global RNG: waits spread requests out the
same way on every run, and nothing random reaches the output.
"""
from __future__ import annotations

import hashlib
import time
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def jitter(uid: str, attempt: int) -> float:
    """A number in [0, 1) fixed by (uid, attempt)."""
    digest = hashlib.blake2b(f"{uid}\x00{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def retry_delay(attempt: int, uid: str, base_s: float, max_s: float,
                retry_after: float | None = None) -> float | None:
    """Seconds to wait after failed attempt number `attempt` (1-based), or None to stop now.

    Half-jittered exponential backoff (base * 2^(attempt-1), capped at max_s); a server's
    Retry-After is a floor. A Retry-After longer than max_s is not waited for: the sample keeps
    its transient reason and a rerun tries again.
    """
    if retry_after is not None and retry_after > max_s:
        return None
    backoff = min(max_s, base_s * 2 ** (attempt - 1)) * (0.5 + 0.5 * jitter(uid, attempt))
    return max(backoff, retry_after or 0.0)
