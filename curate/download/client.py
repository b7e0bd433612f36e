"""One download client per worker process: an event loop thread, an HTTP session, the limits.

Beam calls a DoFn from one or more threads; they all hand batches to the same client, so the
per-worker concurrency, the per-host limits and the robots.txt cache hold for the process, not
per thread. A batch becomes one coroutine: read its cache file, fetch what is left concurrently,
write the cache file, return one Outcome per requested URL.
"""
from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from curate.blocklist.check import open_check
from curate.download.address import AddressPolicy, GuardedResolver
from curate.download.cache import BatchCache
from curate.download.decode import prepare_worker
from curate.download.fetch import Fetcher
from curate.download.options import DownloadSettings
from curate.download.outcome import Outcome

_CLIENTS: dict = {}
_CLIENTS_LOCK = threading.Lock()


class DownloadClient:
    def __init__(self, cfg: DownloadSettings, output: str | None):
        import aiohttp

        self.cfg = cfg
        self.key = (cfg, output)
        # the lists decide outcomes too: results cached under other lists are fetched again
        self.blocks = open_check(cfg.blocklists) if cfg.blocklists else None
        fingerprint = cfg.fingerprint() + (f":{self.blocks.fingerprint}" if self.blocks else "")
        self.cache = BatchCache(output, fingerprint) if cfg.cache and output else None
        self.users = 0
        self.pending_urls = 0  # URLs submitted and not finished (read by the DoFn threads)
        self.progress = 0  # bumped when a URL or a batch finishes: DoFn threads wait on it
        self._progress = threading.Condition()
        prepare_worker(cfg)
        self.cpu = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="curate-decode")
        self.loop = asyncio.new_event_loop()
        # name lookups (getaddrinfo) and cache file I/O run here: asyncio's default of a few
        # threads would make DNS the bottleneck of a list spread over many hosts
        self.loop.set_default_executor(ThreadPoolExecutor(min(64, cfg.concurrency), thread_name_prefix="curate-dns"))
        self.thread = threading.Thread(target=self.loop.run_forever, name="curate-download", daemon=True)
        self.thread.start()

        async def open_session():
            connector = aiohttp.TCPConnector(
                limit=cfg.concurrency + 32, limit_per_host=0, ttl_dns_cache=300,
                resolver=GuardedResolver(AddressPolicy(cfg.allow_private)), enable_cleanup_closed=True)
            return aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                headers={"User-Agent": cfg.user_agent, "Accept": "image/*,*/*;q=0.8"},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=cfg.timeout_s))

        self.session = asyncio.run_coroutine_threadsafe(open_session(), self.loop).result()
        self.fetcher = Fetcher(self.session, cfg, AddressPolicy(cfg.allow_private), self.cpu, self.blocks)

    def submit(self, batch_id: str, items: list[tuple[str, str]]) -> Future:
        """Download (uid, url) pairs of one batch; the future gives their Outcomes in order."""
        self._count(len(items))
        future = asyncio.run_coroutine_threadsafe(self._batch(batch_id, items), self.loop)
        future.add_done_callback(lambda _: self._count(0))
        return future

    async def _batch(self, batch_id: str, items: list[tuple[str, str]]) -> list[Outcome]:
        earlier = await asyncio.to_thread(self.cache.read, batch_id) if self.cache else {}
        outcomes = list(await asyncio.gather(*(self._one(uid, url, earlier.get(uid)) for uid, url in items)))
        if self.cache and not all(o.from_cache for o in outcomes):
            await asyncio.to_thread(self.cache.write, batch_id, outcomes)
        return outcomes

    async def _one(self, uid: str, url: str, earlier: Outcome | None) -> Outcome:
        try:
            if earlier is not None and not earlier.transient:
                return earlier  # finished work of an earlier run: never fetched again
            return await self.fetcher.download(uid, url, earlier)
        finally:
            self._count(-1)

    def _count(self, n: int) -> None:
        with self._progress:
            self.pending_urls += n
            if n <= 0:
                self.progress += 1
                self._progress.notify_all()

    def wait_progress(self, seen: int, timeout: float = 1.0) -> None:
        """Block until a URL or batch finishes after the caller read `progress == seen`."""
        with self._progress:
            self._progress.wait_for(lambda: self.progress != seen, timeout)

    def close(self) -> None:
        async def shut():
            await self.session.close()
            await self.loop.shutdown_default_executor()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()
        self.cpu.shutdown(wait=False)


def acquire(cfg: DownloadSettings, output: str | None) -> DownloadClient:
    """The process's client for this config (built on first use), counted per user."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.get((cfg, output))
        if client is None:
            client = _CLIENTS[(cfg, output)] = DownloadClient(cfg, output)
        client.users += 1
        return client


def release(client: DownloadClient) -> None:
    with _CLIENTS_LOCK:
        client.users -= 1
        if client.users > 0:
            return
        _CLIENTS.pop(client.key, None)
    client.close()
