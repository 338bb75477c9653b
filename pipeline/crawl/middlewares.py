"""Downloader middlewares: the address guard, redirects under our rules, retries that honour
Retry-After, and a last look at each response before decoding.

Priorities (lower runs first on the way out, last on the way back):
  GuardMiddleware 40 (before robots.txt: a refused host is not even asked for robots.txt),
  RetryAfterMiddleware 550 (replaces Scrapy's RetryMiddleware),
  ResponseCheckMiddleware 595 (before the gzip decoding at 590 on the way back),
  SafeRedirectMiddleware 600 (replaces Scrapy's RedirectMiddleware),
  SharedRobotsTxtMiddleware 100 (replaces Scrapy's RobotsTxtMiddleware).
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request, signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import CannotResolveHostError, DownloadTimeoutError, IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet import error as txerror
from twisted.internet.defer import Deferred
from w3lib.url import safe_url_string

from pipeline.crawl.guard import (
    BLOCKED_NAMES,
    HostPolicy,
    is_forbidden_ip,
    normalize_host,
    parse_ip,
)

REDIRECT_CODES = {301, 302, 303, 307, 308}
# What a request that ran out of time raises (Scrapy's own class, and Twisted's from below it).
TIMEOUTS = (DownloadTimeoutError, txerror.TimeoutError)
# ...and one whose host name did not resolve.
DNS_FAILURES = (CannotResolveHostError, txerror.DNSLookupError)
# request.meta key: the download handler held the timed-out request's place at its site.
PLACE_HELD = "_place_held"
# request.meta key: the gzip body as it came over the wire, before Scrapy decoded it, for the
# WARC record (pipeline.crawl.warc keeps such bodies as they came).
WIRE_GZIP = "wire_gzip"


class Refused(IgnoreRequest):
    """The crawler itself declined the request; `reason` is a CRAWL_ERRORS value."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def site_slot(crawler: Any, request: Request) -> tuple[Any, str, Any]:
    """Scrapy's downloader, the key of `request`'s download slot and the slot (None before
    the site's first request). Downloader internals: AttributeError if they changed."""
    downloader = crawler.engine.downloader
    key = downloader.get_slot_key(request)
    return downloader, key, downloader.slots.get(key)


async def _sleep(seconds: float) -> None:
    try:
        from scrapy.utils.asyncio import sleep
    except ImportError:  # Scrapy < 2.18
        from scrapy.utils.defer import maybe_deferred_to_future
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        await maybe_deferred_to_future(deferLater(reactor, seconds))
        return
    await sleep(seconds)


class _PolicyMiddleware:
    """Base of the middlewares that apply the address policy of the crawl settings."""

    def __init__(self, policy: HostPolicy, proxy: str | None):
        self.policy = policy
        self.proxy = proxy

    @classmethod
    def from_crawler(cls, crawler: Any) -> Any:
        s = crawler.settings
        proxy = s.get("WEBTEXT_PROXY") or None
        return cls(HostPolicy(s.getlist("WEBTEXT_ALLOW_HOSTS"), proxy), proxy)


class GuardMiddleware(_PolicyMiddleware):
    """Every request, robots.txt included: start the clock, route through the proxy, give it a
    download slot per site (host:port, so ports are sites), and refuse forbidden addresses."""

    async def process_request(self, request: Request, spider: Any = None) -> None:
        meta = request.meta
        meta.setdefault("t0", time.monotonic())
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused("invalid_url", request.url[:200])
        meta.setdefault("download_slot", parts.netloc.lower())
        if self.proxy:
            meta.setdefault("proxy", self.proxy)
        host = parts.hostname
        if self.policy.allowed(host):
            return
        if parse_ip(host) is not None:
            if self.policy.refuse_literal(host):
                raise Refused("blocked_address", host)
            return
        if self.proxy:
            # The proxy resolves the name, not us: vet it here with our own lookup.
            await self._vet_name(host)
        return

    async def _vet_name(self, host: str) -> None:
        from scrapy.utils.defer import maybe_deferred_to_future
        from twisted.internet import reactor

        try:
            await maybe_deferred_to_future(reactor.resolve(host))  # type: ignore[arg-type]
        except Exception as exc:
            if normalize_host(host) in BLOCKED_NAMES:
                raise Refused(
                    "blocked_address", f"{host} -> {BLOCKED_NAMES[normalize_host(host)]}"
                ) from exc
            raise Refused("dns", str(exc)[:200]) from exc


class ResponseCheckMiddleware(_PolicyMiddleware):
    """Runs on each response before it is decoded: refuses a connection that landed on a
    forbidden address (belt and braces behind the resolver), keeps a download stopped for its
    content type from being decoded (a cut gzip stream would only raise), and keeps a gzip
    body as it came (WIRE_GZIP)."""

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        ip = getattr(response, "ip_address", None)
        host = urlsplit(response.url).hostname or ""
        if (
            ip is not None
            and not self.proxy
            and not self.policy.allowed(host)
            and is_forbidden_ip(ip)
        ):
            raise Refused("blocked_address", f"{host} -> {ip}")
        if "download_stopped" in response.flags and b"Content-Encoding" in response.headers:
            del response.headers[b"Content-Encoding"]
        # Every response overwrites it, so a retried or redirected request never carries an
        # earlier answer's body to the spider.
        request.meta[WIRE_GZIP] = (
            response.body
            if [c.strip().lower() for c in response.headers.getlist(b"Content-Encoding")]
            == [b"gzip"]
            and "download_stopped" not in response.flags
            else None
        )
        return response


class SafeRedirectMiddleware:
    """Follows 3xx with a Location as a new request, so the guard and robots.txt see every hop;
    tells a loop from a merely long chain."""

    def __init__(self, max_redirects: int):
        self.max_redirects = max_redirects

    @classmethod
    def from_crawler(cls, crawler: Any) -> SafeRedirectMiddleware:
        return cls(crawler.settings.getint("REDIRECT_MAX_TIMES"))

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        if response.status not in REDIRECT_CODES or b"Location" not in response.headers:
            return response
        if request.meta.get("dont_redirect"):
            return response
        location = (response.headers.get(b"Location") or b"").decode("latin-1").strip()
        target = safe_url_string(urljoin(request.url, location))
        chain: list[str] = list(request.meta.get("redirect_urls", [])) + [request.url]
        if target in chain:
            raise Refused("redirect_loop", f"{request.url} -> {target}")
        if len(chain) > self.max_redirects:
            raise Refused(
                "too_many_redirects", f"more than {self.max_redirects} hops, last {target}"
            )
        if urlsplit(target).scheme not in ("http", "https"):
            raise Refused("invalid_url", f"redirect to {target[:200]}")
        meta = dict(request.meta)
        meta["redirect_urls"] = chain
        meta["redirect_times"] = len(chain)
        meta["download_slot"] = urlsplit(target).netloc.lower()  # the next hop may be another site
        meta.pop("retry_times", None)
        kwargs: dict[str, Any] = {"url": target, "meta": meta}
        if response.status in (301, 302, 303) and request.method != "HEAD":
            kwargs.update(method="GET", body=b"")
        new = request.replace(**kwargs)
        if urlsplit(target).netloc != urlsplit(request.url).netloc:
            new.headers.pop(b"Authorization", None)
            new.headers.pop(b"Cookie", None)
        return new


def retry_after_seconds(value: bytes | None, cap: float, now: datetime | None = None) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped."""
    if not value:
        return 0.0
    text = value.decode("latin-1").strip()
    try:
        delay = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return 0.0
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, min(delay, cap))


class RetryAfterMiddleware(RetryMiddleware):
    """Scrapy's retries, plus: a 429/503 with Retry-After pauses the whole site (its download
    slot) for that long, capped, so neither the retry nor the site's other pages arrive before
    the server asked; a timed-out request keeps its place at the site for one more timeout; and
    a name the guard refused is not retried."""

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.max_retry_after = settings.getfloat("WEBTEXT_MAX_RETRY_AFTER")
        self.download_timeout = settings.getfloat("DOWNLOAD_TIMEOUT")
        self._paused_until: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> RetryAfterMiddleware:
        o = super().from_crawler(crawler)
        # response_downloaded fires before the slot hands out its next request; by the time
        # process_response runs, the site's next page would already be on its way.
        crawler.signals.connect(o._on_downloaded, signal=signals.response_downloaded)
        return o

    def _retry_after(self, response: Response) -> float:
        if response.status not in (429, 503):
            return 0.0
        return retry_after_seconds(response.headers.get(b"Retry-After"), self.max_retry_after)

    def _on_downloaded(self, response: Response, request: Request, spider: Any = None) -> None:
        delay = self._retry_after(response)
        if delay > 0 and self._pause_site(request, delay):
            request.meta["_site_paused"] = True

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        new = self._retry(request, f"HTTP {response.status}")
        if new is None:
            return response
        delay = self._retry_after(response)
        if delay > 0 and not request.meta.get("_site_paused"):
            await _sleep(delay)  # fallback when the slot could not be paused: this request waits
        new.meta.pop("_site_paused", None)
        return new

    def _pause_site(self, request: Request, seconds: float) -> bool:
        """Hold the site's download slot for `seconds`. Uses the downloader's slot internals
        (the same hook its own DOWNLOAD_DELAY uses); False if they are not there."""
        try:
            from scrapy.utils.asyncio import call_later

            downloader, key, slot = site_slot(self.crawler, request)
            if slot is None:
                return False
            until = time.monotonic() + seconds
            if self._paused_until.get(key, 0.0) >= until and slot.latercall is not None:
                return True  # already paused at least that long
            if slot.latercall is not None:
                slot.latercall.cancel()
            slot.latercall = call_later(seconds, downloader._latercall, slot)
            self._paused_until[key] = until
            return True
        except (AttributeError, ImportError):
            return False

    def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception, spider: Any = None
    ) -> Request | Response | None:
        host = normalize_host(urlsplit(request.url).hostname or "")
        if isinstance(exception, CannotResolveHostError) and host in BLOCKED_NAMES:
            return None
        if isinstance(exception, TIMEOUTS) and not request.meta.get(PLACE_HELD):
            # The download handler holds a timed-out request's place at its site
            # (pipeline/crawl/handler.py); where it could not, the whole site waits one
            # timeout, or the server would see concurrent_per_domain + 1 of ours at once.
            timeout = float(request.meta.get("download_timeout", self.download_timeout))
            self._pause_site(request, timeout)
        return super().process_exception(request, exception)


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with every waiter given its own Deferred.

    Requests to a site that arrive while its robots.txt is still downloading all await the
    same Deferred; turned into a future, the first waiter's callback swallows the parser and
    the later ones get None, which means "allow all" (seen in Scrapy 2.19: 3 of 5 disallowed
    demo pages were fetched). Chaining a fresh Deferred per waiter hands each the parser.
    """

    async def robot_parser(self, request: Request) -> Any:
        parser = self._parsers.get(urlparse_cached(request).netloc)
        if isinstance(parser, Deferred):
            mine: Deferred[Any] = Deferred()

            def relay(result: Any) -> Any:
                mine.callback(result)
                return result

            parser.addCallback(relay)
            return await maybe_deferred_to_future(mine)
        return await super().robot_parser(request)
