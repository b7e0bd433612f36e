"""The benchmark's image server: asyncio (aiohttp), several loopback hosts, injected faults.

`python benchmarks/bench_download_server.py CORPUS_DIR PORT HOSTS` serves the files of
CORPUS_DIR (named 0.jpg, 1.webp, ...) at http://127.0.0.<h>:PORT/<kind>/<url id>/<n>.<ext> for
h in 1..HOSTS (the url id makes every URL of a list distinct, so each meets its own fault).
Kinds: `ok`; `r429` answers 429 with `Retry-After: 1` until a second has passed since the
first 429 for that URL; `e503` answers 503 to the first request; `slow` holds the first
request for SLOW_S seconds (past any client's deadline), then answers at once. GET /_reset
forgets which URLs were seen, so each tool meets the same faults. robots.txt is a 404.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time

from aiohttp import web

SLOW_S = 30.0
TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def make_app(corpus_dir: str) -> web.Application:
    files = sorted(os.listdir(corpus_dir), key=lambda n: int(n.split(".")[0]))
    corpus = [open(os.path.join(corpus_dir, f), "rb").read() for f in files]
    seen: dict[str, float] = {}

    async def reset(_request):
        seen.clear()
        return web.Response(text="ok")

    async def image(request):
        kind, name = request.match_info["kind"], request.match_info["name"]
        n, ext = name.split(".")
        key = request.host + request.path
        first = seen.get(key)
        now = time.monotonic()
        if first is None:
            seen[key] = now
        if kind == "r429" and (first is None or now - first < 1.0):
            return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})
        if kind == "e503" and first is None:
            return web.Response(status=503, text="unavailable")
        if kind == "slow" and first is None:
            await asyncio.sleep(SLOW_S)
        return web.Response(body=corpus[int(n) % len(corpus)], content_type=TYPES[ext])

    app = web.Application()
    app.router.add_get("/_reset", reset)
    app.router.add_get("/{kind}/{url_id}/{name}", image)
    return app


async def serve(corpus_dir: str, port: int, hosts: int) -> None:
    runner = web.AppRunner(make_app(corpus_dir), access_log=None)
    await runner.setup()
    for h in range(1, hosts + 1):
        await web.TCPSite(runner, f"127.0.0.{h}", port, backlog=1024).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
