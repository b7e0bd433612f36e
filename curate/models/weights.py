"""Published weight files of the signal models (LAION's heads, the watermark detector), by URL.

A user names a file with `--<signal>_weights PATH` (local, gs://, s3://; the file as its authors
published it), or gets the published one: downloaded once into the cache folder
(`$CURATE_CACHE`, default `~/.cache/curate`) before the run starts, so no network or a moved
file fails at once, in one line. Workers on other machines fetch it themselves, the same way.
"""
from __future__ import annotations

import os
import tempfile
import urllib.request
from urllib.parse import urlsplit

from curate.errors import UsageError

TIMEOUT_S = 60


def cache_folder() -> str:
    return os.environ.get("CURATE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "curate")


def cached_path(url: str) -> str:
    """Where `url` is kept once downloaded: <cache>/weights/<host>/<path>."""
    parts = urlsplit(url)
    return os.path.join(cache_folder(), "weights", parts.hostname or "local", *parts.path.strip("/").split("/"))


def download(url: str, flag: str) -> str:
    """The published file at `url`, from the cache or fetched now (atomically); UsageError in one line."""
    path = cached_path(url)
    if os.path.isfile(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, tempfile.NamedTemporaryFile(
                dir=os.path.dirname(path), delete=False) as tmp:
            while chunk := response.read(1 << 20):
                tmp.write(chunk)
        os.replace(tmp.name, path)
    except Exception as e:  # noqa: BLE001 (no network, 404, timeout: all one message)
        if "tmp" in locals() and os.path.exists(tmp.name):
            os.unlink(tmp.name)
        why = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UsageError(f"{flag}: cannot fetch the published weights {url} ({why}); offline, "
                         f"pass the file with {flag}") from None
    return path


def weights_file(given: str | None, url: str | None, flag: str, what: str) -> str:
    """A local file of the weights: the one named by `flag`, else the published one at `url`."""
    if given:
        if "://" not in given and not os.path.isfile(given):
            raise UsageError(f"{flag}: no such file {given}")
        from curate.models.clip import local_checkpoint

        return local_checkpoint(given)
    if url is None:
        raise UsageError(f"{flag}: {what} has no published PyTorch weights; pass the file with {flag}")
    return download(url, flag)
