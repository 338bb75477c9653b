"""A threaded HTTP forward proxy on 127.0.0.1 that answers for the demo hosts itself.

Clients (Scrapy, urllib with a ProxyHandler) send `GET http://host/path HTTP/1.1`; plain
origin-form requests with a Host header work too. Nothing is forwarded anywhere: unknown hosts
get 502, and CONNECT (HTTPS tunnelling) is refused, so the demo can never reach the internet.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from demo.html import not_found_page
from demo.web import ARCHIVE_HOSTS

if TYPE_CHECKING:
    from demo.web import DemoWeb


def _handler_for(web: DemoWeb) -> type[BaseHTTPRequestHandler]:
    def not_found(host: str) -> bytes:
        return web.not_found.get(host) or not_found_page(None)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "demo-web/1.0"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:
            pass  # a test run should not print a line per request

        def _target(self) -> tuple[str, str]:
            if self.path.startswith(("http://", "https://")):
                parts = urlsplit(self.path)
                host = parts.hostname or ""
                path = parts.path or "/"
                if parts.query:
                    path += "?" + parts.query
            else:
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
                path = self.path
            return host.lower(), path

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            host, path = self._target()
            if web.archive is not None and host in ARCHIVE_HOSTS:
                headers = {k.lower(): v for k, v in self.headers.items()}
                self._send(*web.archive.handle(path, headers))
                return
            if host not in web.pages:
                self._send(
                    502,
                    {"Content-Type": "text/plain"},
                    f"demo proxy: unknown host {host!r}\n".encode(),
                )
                return
            if path == "/robots.txt":
                if host in web.robots:
                    self._send(
                        200,
                        {"Content-Type": "text/plain; charset=utf-8"},
                        web.robots[host].encode(),
                    )
                else:
                    self._send(404, {"Content-Type": "text/html; charset=utf-8"}, not_found(host))
                return
            page = web.pages[host].get(path.split("?", 1)[0])
            if page is None:
                self._send(404, {"Content-Type": "text/html; charset=utf-8"}, not_found(host))
                return
            status, headers, body = page
            self._send(status, headers, body)

        do_HEAD = do_GET

        def do_CONNECT(self) -> None:
            self._send(405, {"Content-Type": "text/plain"}, b"demo proxy: no tunnelling\n")

        def do_POST(self) -> None:
            self._send(405, {"Content-Type": "text/plain", "Allow": "GET, HEAD"}, b"")

    return Handler


class _DemoServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A crawler that gives up on a response (size cap, wrong content type, timeout) closes
        # its socket mid-body; that is the client's right, not a server fault worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def serve(web: DemoWeb) -> Iterator[str]:
    """Run the demo proxy for the duration of the block; yields "http://127.0.0.1:PORT"."""
    server = _DemoServer(("127.0.0.1", 0), _handler_for(web))
    thread = threading.Thread(target=server.serve_forever, name="demo-web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
