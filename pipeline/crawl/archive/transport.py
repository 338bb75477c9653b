"""Transport to the archives: the crawl's address guard on every connection and redirect
hop, a size cap, a request rate per archive shared by a build's processes, and retries with
Retry-After or a doubling backoff."""

from __future__ import annotations

import fcntl
import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from pipeline.core.config import CrawlConfig
from pipeline.crawl.archive.formats import Failed

_RETRY_STATUS = {429, 500, 502, 503, 504}
_REDIRECTS = {301, 302, 303, 307, 308}


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes
    url: str  # after redirects


class RateGate:
    """At most `rate` requests per second to one archive from every process of a build: the
    time of the next free slot lives in a lock file, and a waiter sleeps holding the lock."""

    def __init__(self, path: Path, rate: float):
        self.path = path
        self.interval = 1.0 / rate
        path.parent.mkdir(parents=True, exist_ok=True)

    def wait(self) -> None:
        with open(self.path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0)
                try:
                    last = float(f.read().strip() or 0.0)
                except ValueError:
                    last = 0.0
                now = time.time()
                slot = max(now, last + self.interval)
                if slot > now:
                    time.sleep(slot - now)
                f.seek(0)
                f.truncate()
                f.write(repr(slot))
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


class _Connection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        # The vetted address, not a second lookup that could answer differently (rebinding).
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _TLSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class GuardedClient:
    """GET with the crawl's address guard on every hop, a size cap and manual redirects."""

    def __init__(self, cfg: CrawlConfig, user_agent: str):
        from pipeline.crawl.guard import HostPolicy

        self.policy = HostPolicy(cfg.allow_hosts, cfg.proxy)
        self.proxy = urlsplit(cfg.proxy) if cfg.proxy else None
        self.timeout = cfg.archive.timeout
        self.max_bytes = cfg.max_bytes
        self.max_redirects = cfg.max_redirects
        self.user_agent = user_agent

    def _address(self, host: str, port: int) -> str:
        """The address to connect to, vetted; "" for an allowed name behind the proxy (the
        proxy resolves it, as in the crawl's GuardMiddleware)."""
        from pipeline.crawl.guard import parse_ip

        if self.proxy is not None and self.policy.allowed(host):
            return ""
        if parse_ip(host) is not None:
            if self.policy.refuse_literal(host):
                raise Failed("archive_blocked_address", host)
            return host.strip("[]")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as err:
            raise Failed("archive_unavailable", f"dns: {host}: {err}") from None
        address = str(infos[0][4][0])
        if self.policy.refuse_resolved(host, address):
            raise Failed("archive_blocked_address", f"{host} -> {address}")
        return address

    def _once(self, url: str, headers: dict[str, str]) -> Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Failed("archive_bad_record", f"not an http(s) URL: {url[:200]}")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = self._address(host, port)  # vetted even behind a proxy
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn: http.client.HTTPConnection
        if self.proxy is not None:
            phost, pport = self.proxy.hostname or "", self.proxy.port or 80
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(phost, pport, timeout=self.timeout)
                conn.set_tunnel(host, port)
            else:
                conn = http.client.HTTPConnection(phost, pport, timeout=self.timeout)
                path = url
        elif parts.scheme == "https":
            conn = _TLSConnection(host, port, address, self.timeout)
        else:
            conn = _Connection(host, port, address, self.timeout)
        try:
            conn.request(
                "GET",
                path,
                headers={
                    "User-Agent": self.user_agent,
                    "Accept-Encoding": "gzip",
                    "Host": parts.netloc,
                    **headers,
                },
            )
            resp = conn.getresponse()
            lower = {k.lower(): v for k, v in resp.getheaders()}
            declared = lower.get("content-length", "")
            # A compressed archive record may be larger than its page; allow some slack.
            cap = self.max_bytes + 65536
            if declared.isdigit() and int(declared) > cap:
                raise Failed("archive_too_large", f"Content-Length {declared} > {cap}")
            body = resp.read(cap + 1)
            if len(body) > cap:
                raise Failed("archive_too_large", f"body > {cap} bytes")
            if declared.isdigit() and len(body) < int(declared):
                raise Failed("archive_bad_record", f"truncated: {len(body)} of {declared} bytes")
            raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.getheaders()]
            return Response(resp.status, lower, raw, body, url)
        except (OSError, http.client.HTTPException) as err:
            raise _Transient(f"{type(err).__name__}: {err}"[:200]) from None
        finally:
            conn.close()

    def get(self, url: str, headers: dict[str, str] | None = None) -> Response:
        seen = [url]
        for _ in range(self.max_redirects + 1):
            resp = self._once(url, headers or {})
            location = resp.headers.get("location")
            if resp.status not in _REDIRECTS or not location:
                return resp
            url = urljoin(url, location.strip())
            if url in seen:
                raise Failed("archive_bad_record", f"redirect loop at {url[:200]}")
            seen.append(url)
        raise Failed("archive_bad_record", f"more than {self.max_redirects} redirects")


class _Transient(Exception):
    """A network error worth a retry."""


def retry_after(value: str | None, cap: float) -> float | None:
    if not value:
        return None
    try:
        delay = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(delay, cap))


@dataclass
class Session:
    """One archive step: the client, a gate per archive, retries with backoff."""

    cfg: CrawlConfig
    gates: dict[str, RateGate]
    client: GuardedClient
    sleep: Callable[[float], None] = time.sleep
    requests: dict[str, int] = field(default_factory=dict)  # per archive, retries included
    collinfo: list[dict[str, Any]] | None = None  # Common Crawl's crawls, read once per step

    def get(self, archive: str, url: str, headers: dict[str, str] | None = None) -> Response:
        acfg = self.cfg.archive
        what = ""
        for attempt in range(acfg.retries + 1):
            self.gates[archive].wait()
            self.requests[archive] = self.requests.get(archive, 0) + 1
            wait = acfg.backoff * 2**attempt
            try:
                resp = self.client.get(url, headers)
            except _Transient as err:
                what = str(err)
            else:
                if resp.status not in _RETRY_STATUS:
                    return resp
                what = f"status {resp.status}"
                ra = retry_after(resp.headers.get("retry-after"), self.cfg.max_retry_after)
                if ra is not None:
                    wait = ra
            if attempt < acfg.retries:
                self.sleep(wait)
        raise Failed("archive_unavailable", f"{what} after {acfg.retries + 1} tries")
