"""A hostile little web for the crawler tests: several sites on several 127.0.0.1 ports.

asyncio, one thread (or one process for the benchmark), a hand-rolled HTTP/1.1 with keep-alive,
so a handler can misbehave at the byte level: stall, reset mid-body, lie about lengths, bomb.
Every request is logged as (port, method, path) so tests can prove what was never fetched.

    python tests/crawl_server.py --bench-sites 50 --pages 200   # benchmark mode, prints ports
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Writer = asyncio.StreamWriter


@dataclass
class Req:
    port: int
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Resp:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_length: bool = True


Handler = Callable[[Req, Writer], Awaitable[Resp | None]]  # None: the handler wrote (or broke) it

REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    307: "Temporary Redirect",
    404: "Not Found",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def html(title: str, body: str, charset: str | None = None) -> bytes:
    meta = f'<meta charset="{charset}">' if charset else ""
    return (
        f"<!DOCTYPE html><html><head>{meta}<title>{title}</title></head><body>"
        f"<h1>{title}</h1><p>{body}</p></body></html>"
    ).encode(charset or "utf-8")


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]] | None:
    """(method, target, headers with lower-case names) of the connection's next request; None
    once the client is gone."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ") + ["", ""])[:3]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return method, target, headers


def encode_response(resp: Resp) -> bytes:
    lines = [f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, 'Status')}"]
    names = {k.lower() for k, _ in resp.headers}
    headers = list(resp.headers)
    if resp.content_length and "content-length" not in names:
        headers.append(("Content-Length", str(len(resp.body))))
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + resp.body


class Site:
    """Routes of one site: exact paths, else prefix handlers, else 404."""

    def __init__(self, robots: str | None = None):
        self.routes: dict[str, Handler] = {}
        self.prefixes: list[tuple[str, Handler]] = []
        if robots is not None:
            self.static("/robots.txt", robots.encode(), "text/plain")

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def prefix(self, path: str, handler: Handler) -> None:
        self.prefixes.append((path, handler))

    def static(
        self,
        path: str,
        body: bytes,
        ctype: str = "text/html",
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        async def h(req: Req, w: Writer) -> Resp:
            return Resp(200, body, [("Content-Type", ctype), *(extra or [])])

        self.routes[path] = h

    def find(self, path: str) -> Handler | None:
        if path in self.routes:
            return self.routes[path]
        for p, h in self.prefixes:
            if path.startswith(p):
                return h
        return None


class CrawlServer:
    def __init__(
        self, sites: list[Site], host: str = "127.0.0.1", vhosts: dict[str, Site] | None = None
    ):
        self.sites = sites
        # Forward-proxy mode: a request with an absolute URI is served by vhosts[its host].
        self.vhosts = vhosts or {}
        self.vhits: Counter[tuple[str, str]] = Counter()
        self.host = host
        self.ports: list[int] = []
        self.log: list[tuple[int, str, str]] = []
        self.hits: Counter[tuple[int, str]] = Counter()
        # Politeness evidence: requests in flight per port (now and at most), user agents seen.
        self.inflight: Counter[int] = Counter()
        self.max_inflight: Counter[int] = Counter()
        self.max_inflight_total = 0  # over every site at once
        self.user_agents: set[str] = set()
        self.times: list[tuple[float, int, str]] = []  # (monotonic time, port, path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    async def _start(self) -> None:
        for site in self.sites:
            srv = await asyncio.start_server(
                lambda r, w, s=site: self._serve(s, r, w), self.host, 0, backlog=1024
            )
            self._servers.append(srv)
            self.ports.append(srv.sockets[0].getsockname()[1])

    def start(self) -> CrawlServer:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close() -> None:
            for s in self._servers:
                s.close()
            # Stalled handlers (the slow page) would otherwise die noisily with the loop.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)

    def url(self, site: int, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[site]}{path}"

    def fetched(self, site: int, path: str) -> int:
        return self.hits[(self.ports[site], path)]

    # -- protocol ---------------------------------------------------------------------------
    async def _serve(self, site: Site, reader: asyncio.StreamReader, writer: Writer) -> None:
        port = writer.get_extra_info("sockname")[1]
        try:
            while (request := await read_request(reader)) is not None:
                method, target, headers = request
                serving = site
                if target.startswith(("http://", "https://")):
                    vhost = target.split("/", 3)[2].lower()
                    target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
                    self.vhits[(vhost, target)] += 1
                    serving = self.vhosts.get(vhost, Site())
                self.log.append((port, method, target))
                self.hits[(port, target)] += 1
                self.times.append((time.monotonic(), port, target))
                self.user_agents.add(headers.get("user-agent", ""))
                req = Req(port, method, target, headers)
                handler = serving.find(target.split("?", 1)[0])
                self.inflight[port] += 1
                self.max_inflight[port] = max(self.max_inflight[port], self.inflight[port])
                total = sum(self.inflight.values())
                self.max_inflight_total = max(self.max_inflight_total, total)
                try:
                    if handler is None:
                        resp: Resp | None = Resp(404, b"nope", [("Content-Type", "text/html")])
                    else:
                        resp = await handler(req, writer)
                finally:
                    self.inflight[port] -= 1
                if resp is None:
                    return  # the handler took over the connection and closed or broke it
                writer.write(encode_response(resp))
                await writer.drain()
                if not resp.content_length or headers.get("connection", "").lower() == "close":
                    break
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


# -- handlers for the hostile site ----------------------------------------------------------------
def first_then(first: Resp, then: Resp) -> Handler:
    seen = {"n": 0}

    async def h(req: Req, w: Writer) -> Resp:
        seen["n"] += 1
        return first if seen["n"] == 1 else then

    return h


def redirect(location: str, status: int = 302) -> Handler:
    async def h(req: Req, w: Writer) -> Resp:
        return Resp(status, b"", [("Location", location)])

    return h


async def slow(req: Req, w: Writer) -> Resp:
    await asyncio.sleep(5)
    return Resp(200, html("slow", "finally"), [("Content-Type", "text/html")])


async def reset_mid_body(req: Req, w: Writer) -> None:
    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
    w.write(b"<html><body>" + b"x" * 5000)
    await w.drain()
    await asyncio.sleep(0.05)
    sock = w.get_extra_info("socket")
    # SO_LINGER 0: close sends RST instead of FIN, a real reset mid-body.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.transport.abort()


async def garbage(req: Req, w: Writer) -> None:
    w.write(b"SPDY/9 banana\r\n\x00\x01\x02 not http at all\r\n\r\n")
    await w.drain()
    w.close()


def chunked_stream(total: int) -> Handler:
    async def h(req: Req, w: Writer) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"<p>" + b"y" * 16000 + b"</p>"
        sent = 0
        try:
            while sent < total:
                w.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
                await w.drain()
            w.write(b"0\r\n\r\n")
            await w.drain()
        except ConnectionError:
            pass
        w.close()

    return h


def hostile_site(bomb_mb: int = 64) -> Site:
    s = Site(robots="User-agent: *\nDisallow: /private/\n")
    ok = Resp(200, html("ok", "A fine page."), [("Content-Type", "text/html; charset=utf-8")])
    s.static("/ok.html", html("ok", "A fine page."), "text/html; charset=utf-8")
    s.static("/ok2.html", html("ok2", "Where the chain ends."))
    s.static("/private/secret.html", html("secret", "robots says no"))
    s.route(
        "/missing",
        first_then(
            Resp(404, b"nope", [("Content-Type", "text/html")]),
            Resp(404, b"nope", [("Content-Type", "text/html")]),
        ),
    )
    s.route(
        "/gone",
        first_then(
            Resp(410, b"gone", [("Content-Type", "text/html")]),
            Resp(410, b"gone", [("Content-Type", "text/html")]),
        ),
    )
    s.route("/flaky", first_then(Resp(500, b"oops", [("Content-Type", "text/html")]), ok))
    s.route(
        "/busy",
        first_then(
            Resp(429, b"slow down", [("Content-Type", "text/html"), ("Retry-After", "1")]), ok
        ),
    )
    always429 = Resp(429, b"go away", [("Content-Type", "text/html"), ("Retry-After", "3600")])
    s.route("/always-busy", first_then(always429, always429))
    always500 = Resp(500, b"down", [("Content-Type", "text/html")])
    s.route("/always-500", first_then(always500, always500))
    s.route("/r/1", redirect("/r/2", 301))
    s.route("/r/2", redirect("/r/3", 302))
    s.route("/r/3", redirect("/ok2.html", 307))

    async def long_chain(req: Req, w: Writer) -> Resp:
        n = int(req.path.rsplit("/", 1)[1])
        return Resp(302, b"", [("Location", f"/long/{n + 1}")])

    s.prefix("/long/", long_chain)
    s.route("/loop/a", redirect("/loop/b"))
    s.route("/loop/b", redirect("/loop/a"))
    s.route("/no-location", first_then(Resp(302, b"", []), Resp(302, b"", [])))
    s.route("/slow", slow)
    s.static("/big", b"<html>" + b"z" * 300_000, "text/html")
    s.route("/big-chunked", chunked_stream(400_000))
    bomb = gzip.compress(b"\0" * (bomb_mb << 20), compresslevel=9)
    s.static("/bomb", bomb, "text/html", [("Content-Encoding", "gzip")])
    page = html("gzipped", "Compressed on the wire. " * 20)
    s.static(
        "/gzip.html", gzip.compress(page, mtime=0), "text/html", [("Content-Encoding", "gzip")]
    )
    # Two gzip members: HTTP clients read both, a WARC reader stops after the first.
    page = html("two members", "Half of it in each member. " * 20)
    members = gzip.compress(page[:100], mtime=0) + gzip.compress(page[100:], mtime=0)
    s.static("/gzip-members.html", members, "text/html", [("Content-Encoding", "gzip")])
    s.static("/doc.pdf", b"%PDF-1.4\n" + b"0" * 5000, "application/pdf")
    s.static("/notes.txt", b"plain text", "text/plain")
    s.static("/page.xhtml", html("xhtml", "An XHTML page."), "application/xhtml+xml")
    s.static(
        "/cp1251.html",
        html("Привет", "Съешь же ещё этих мягких французских булок.", "windows-1251"),
        "text/html",
    )
    s.static(
        "/sjis.html", html("こんにちは", "いろはにほへと ちりぬるを", "shift_jis"), "text/html"
    )
    s.static(
        "/malformed.html",
        b"<html><head><title>broken</title><body><p>unclosed <div><b>bold <i>text</p></table>&nbsp &amp</body",
        "text/html",
    )
    s.route("/reset", reset_mid_body)
    s.route("/garbage", garbage)
    s.static(
        "/bad-gzip", b"this is not gzip at all" * 10, "text/html", [("Content-Encoding", "gzip")]
    )
    s.static("/empty", b"", "text/html")
    s.route(
        "/secret-admin",
        first_then(
            Resp(200, html("admin", "internal"), [("Content-Type", "text/html")]),
            Resp(200, html("admin", "internal"), [("Content-Type", "text/html")]),
        ),
    )
    return s


def plain_site(pages: int = 2, robots: str | None = None) -> Site:
    s = Site(robots=robots)
    for i in range(pages):
        s.static(f"/page{i}.html", html(f"page {i}", f"Text of page {i}. " * 30))
    return s


def bench_site(pages: int) -> Site:
    """Pages of ~6 KB of varied text, like a small article."""
    s = Site(robots="User-agent: *\nDisallow: /admin/\n")
    words = [
        "the",
        "crawler",
        "fetched",
        "a",
        "page",
        "about",
        "rivers",
        "mountains",
        "trade",
        "history",
        "and",
        "local",
        "news",
    ]

    async def page(req: Req, w: Writer) -> Resp:
        n = int(req.path.rsplit("/", 1)[1].split(".")[0])
        body = " ".join(words[(n * 7 + i) % len(words)] for i in range(900))
        return Resp(200, html(f"article {n}", body), [("Content-Type", "text/html; charset=utf-8")])

    s.prefix("/a/", page)
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-sites", type=int, default=50)
    ap.add_argument("--pages", type=int, default=200)
    args = ap.parse_args()
    server = CrawlServer([bench_site(args.pages) for _ in range(args.bench_sites)])

    async def run() -> None:
        await server._start()
        print(json.dumps({"ports": server.ports}), flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
