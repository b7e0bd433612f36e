"""A loopback HTTP server with every route the download stage must handle (no network).

Good JPEG/PNG/WebP (the same bytes under any /img/ name; distinct ones under /photo/<n>.jpg), 404, 500 then success, 429 with Retry-After then success, a slow drip
past the deadline, an endless body past the byte cap, a wrong Content-Type, HTML, a truncated
image, a decompression bomb, redirect chains, redirects to a private address and to another
scheme, robots.txt, X-Robots-Tag, TDMRep (a settable /.well-known/tdmrep.json and
`tdm-reservation` headers), images a test puts in `state.blobs` (/blob/<name>, and
/to_blob/<name> redirecting there), a dropped connection, and two switchable routes for the
resume test (an outage that returns 503, a request that hangs). The server counts every
request per path and records when each arrived.
"""
from __future__ import annotations

import io
import struct
import sys
import threading
import time
import zlib
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n\nUser-agent: otherbot\nDisallow: /\n"
HTML = b"<!doctype html><html><body>not an image</body></html>"


def make_image(fmt: str, size=(80, 60), seed: int = 0) -> bytes:
    image = Image.new("RGB", size)
    image.putdata([((x * 3 + seed) % 256, (y * 4 + seed) % 256, (x + y) % 256)
                   for y in range(size[1]) for x in range(size[0])])
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (10 G by default)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


IMAGES = {"jpg": make_image("JPEG"), "png": make_image("PNG", seed=7), "webp": make_image("WEBP", seed=13)}
TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


class _State:
    def __init__(self):
        self.hits: Counter = Counter()
        self.user_agents: set[str] = set()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.robots_status = 200  # what /robots.txt answers
        self.outage = False  # /outage/* answers 503 while set
        self.hang = threading.Event()  # /hang/* waits while set
        self.tdmrep: bytes | None = None  # /.well-known/tdmrep.json (404 while None)
        self.blobs: dict[str, bytes] = {}  # /blob/<name>
        self.lock = threading.Lock()

    def seen(self, path: str, user_agent: str | None) -> int:
        with self.lock:
            self.user_agents.add(user_agent)
            self.hits[path] += 1
            self.times[path].append(time.monotonic())
            return self.hits[path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: _State

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", ctype: str = "image/jpeg", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _image(self, fmt: str = "jpg", headers: dict | None = None):
        self._send(200, IMAGES[fmt], TYPES[fmt], headers)

    def _stream(self, first: bytes, more: bytes, pause: float, times: int):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(first)
        for _ in range(times):
            self.wfile.write(more)
            self.wfile.flush()
            if pause:
                time.sleep(pause)

    def do_GET(self):  # noqa: C901  (one branch per route, on purpose)
        path = self.path.split("?", 1)[0]
        n = self.state.seen(path, self.headers.get("User-Agent"))
        parts = path.strip("/").split("/")
        try:
            if path == "/robots.txt":
                status = self.state.robots_status
                self._send(status, ROBOTS_TXT if status == 200 else b"", "text/plain")
            elif path == "/.well-known/tdmrep.json":
                tdmrep = self.state.tdmrep
                self._send(404, b"", "text/plain") if tdmrep is None else self._send(200, tdmrep, "application/json")
            elif parts[0] == "blob":
                self._send(200, self.state.blobs[parts[1]]) if parts[1] in self.state.blobs else self._send(404)
            elif parts[0] == "to_blob":
                self._send(302, b"", "text/plain", {"Location": f"/blob/{parts[1]}"})
            elif parts[0] == "tdm_header":  # /tdm_header/<0|1|x>.jpg: an image with that tdm-reservation
                self._image(headers={"tdm-reservation": parts[1].split(".")[0],
                                     "tdm-policy": "https://rights.example/policy.json"})
            elif parts[0] in ("reserved", "open"):  # reserved or not by the tdmrep.json a test sets
                self._image(parts[-1].rsplit(".", 1)[-1] if parts[-1].endswith((".png", ".webp")) else "jpg")
            elif path == "/noml.jpg":
                self._image(headers={"X-Robots-Tag": "noml"})
            elif parts[0] == "img":
                self._image(parts[1].rsplit(".", 1)[-1])
            elif parts[0] == "photo":  # /photo/<n>.jpg: a different JPEG for every n
                self._send(200, make_image("JPEG", seed=int(parts[1].split(".")[0])))
            elif parts[0] == "private":
                self._image()
            elif parts[0] == "404":
                self._send(404, b"not found", "text/plain")
            elif parts[0] == "flaky":  # 500 once, then the image
                self._send(500, b"oops", "text/plain") if n == 1 else self._image()
            elif parts[0] == "busy":  # 429 with Retry-After once, then the image
                self._send(429, b"slow down", "text/plain", {"Retry-After": parts[1]}) if n == 1 else self._image()
            elif parts[0] == "always503":
                self._send(503, b"down", "text/plain")
            elif path == "/slow.jpg":  # a byte every 0.1 s: the deadline passes long before the end
                self._stream(IMAGES["jpg"][:4], b"\0", 0.1, 600)
            elif path == "/endless.jpg":  # a JPEG header, then megabytes of padding
                self._stream(IMAGES["jpg"][:4], b"\0" * 65536, 0, 2000)
            elif path == "/declared_huge.jpg":
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
                self.close_connection = True
            elif path == "/wrong_type.jpg":  # a real JPEG announced as text
                self._send(200, IMAGES["jpg"], "text/html; charset=utf-8")
            elif path == "/page.jpg":  # an HTML page announced as an image
                self._send(200, HTML, "image/jpeg")
            elif path == "/truncated.jpg":
                self._send(200, IMAGES["jpg"][: len(IMAGES["jpg"]) // 2])
            elif path == "/bomb.png":
                self._send(200, png_bomb(), "image/png")
            elif parts[0] == "redirect":  # /redirect/<hops>: a chain ending at an image
                hops = int(parts[1])
                target = f"/redirect/{hops - 1}" if hops > 1 else "/img/chain.jpg"
                self._send(302, b"", "text/plain", {"Location": target})
            elif path == "/to_private":
                self._send(302, b"", "text/plain", {"Location": "http://169.254.169.254/latest/meta-data/"})
            elif path == "/to_file":
                self._send(302, b"", "text/plain", {"Location": "file:///etc/passwd"})
            elif path == "/noai.jpg":
                self._image(headers={"X-Robots-Tag": "noai"})
            elif path == "/otherbot_noai.jpg":  # scoped to another crawler: not for us
                self._image(headers={"X-Robots-Tag": "otherbot: noai, noimageai"})
            elif path == "/reset":
                self.close_connection = True
                self.connection.shutdown(2)
            elif parts[0] == "outage":
                self._send(503, b"down", "text/plain") if self.state.outage else self._image()
            elif parts[0] == "hang":
                while self.state.hang.is_set():
                    time.sleep(0.05)
                self._image()
            else:
                self._send(404, b"no such route", "text/plain")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (deadline, byte cap): fine


def _quiet_on_disconnect(server, request, client_address):
    if not isinstance(sys.exc_info()[1], ConnectionError):  # clients hang up on purpose here
        ThreadingHTTPServer.handle_error(server, request, client_address)


class LoopbackServer:
    def __init__(self):
        self.state = _State()
        handler = type("Handler", (_Handler,), {"state": self.state})
        server = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 256,  # no dropped SYNs
                                                         "handle_error": _quiet_on_disconnect})
        self.httpd = server(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        return self.state.hits[path]

    def start(self) -> "LoopbackServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.state.hang.clear()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def http_server():
    server = LoopbackServer().start()
    yield server
    server.stop()
