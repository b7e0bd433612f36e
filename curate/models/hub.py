"""Is the Hugging Face hub reachable? Asked once, in well under a second, before any download.

Without network huggingface_hub retries each file for about a minute before it gives up; a
run that cannot fetch its weights should say so at once. Offline (HF_HUB_OFFLINE set, or the
hub's host does not resolve or accept a connection), downloads run in huggingface_hub's
offline mode: weights already in the cache still load, anything else fails immediately.
"""
from __future__ import annotations

import contextlib
import os
import socket
from functools import lru_cache
from urllib.parse import urlsplit

PROBE_TIMEOUT_S = 3.0
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@lru_cache(maxsize=4)
def _probe(endpoint: str) -> str | None:
    """Why `endpoint` is unreachable, or None when a TCP connection opens (or a proxy decides)."""
    if any(os.environ.get(v) for v in PROXY_VARS):
        return None  # only the proxy knows: let huggingface_hub try
    parts = urlsplit(endpoint)
    host, port = parts.hostname or "huggingface.co", parts.port or (443 if parts.scheme != "http" else 80)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
        return None
    except OSError as e:
        return f"{host} unreachable: {e.strerror or type(e).__name__}"


def offline_reason() -> str | None:
    """Why the hub cannot be used now (HF_HUB_OFFLINE, no route), or None."""
    import huggingface_hub.constants as hf

    if _env_offline() or getattr(hf, "HF_HUB_OFFLINE", False):
        return "HF_HUB_OFFLINE is set"
    return _probe(getattr(hf, "ENDPOINT", "https://huggingface.co"))


@contextlib.contextmanager
def hub_mode():
    """Run downloads inside: offline mode when the hub is unreachable. Yields the reason or None."""
    import huggingface_hub.constants as hf

    reason = offline_reason()
    before = hf.HF_HUB_OFFLINE
    if reason:
        hf.HF_HUB_OFFLINE = True  # cached files only, no retries
    try:
        yield reason
    finally:
        hf.HF_HUB_OFFLINE = before
