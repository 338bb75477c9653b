"""The spider of one links part and the recorder that turns each outcome into one fetch row.

Runs inside the crawl subprocess only (it imports Scrapy and Twisted).
"""

from __future__ import annotations

import contextlib
import gzip
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy import signals
from scrapy.exceptions import (
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    IgnoreRequest,
    NotSupported,
    ResponseDataLossError,
    StopDownload,
    UnsupportedURLSchemeError,
)
from scrapy.http import Response
from twisted.internet import error as txerror
from twisted.python.failure import Failure

from pipeline.core.progress import PartProgress
from pipeline.crawl.deadpage import judge_page
from pipeline.crawl.feeder import HostFeeder, first_contact_work
from pipeline.crawl.guard import BLOCKED_NAMES, normalize_host
from pipeline.crawl.middlewares import DNS_FAILURES, TIMEOUTS, WIRE_GZIP, Refused
from pipeline.crawl.share import LoadBoard
from pipeline.crawl.sink import ArchiveSink
from pipeline.crawl.warc import is_single_gzip
from pipeline.crawl.window import TICK, LagWindow, MachineIdle

# Requests a callback hands out after its outcome: the freed place, and room to grow.
REFILL = 4
# Every how many window ticks a part publishes its links left and reweighs its window (1 s).
SHARE_TICKS = 10

# A page without a Content-Type is kept only if it looks like HTML.
_HTML_SNIFF = (b"<!doctype html", b"<html", b"<head", b"<body")


def media_type(value: bytes | None) -> str | None:
    if not value:
        return None
    return value.decode("latin-1").split(";", 1)[0].strip().lower() or None


def round_robin(urls: list[str]) -> list[str]:
    """Interleave links by site so the first thousand requests are not all for one host."""
    by_site: OrderedDict[str, list[str]] = OrderedDict()
    for u in urls:
        by_site.setdefault(urlsplit(u).netloc.lower(), []).append(u)
    queues = list(by_site.values())
    out: list[str] = []
    depth = 0
    while queues:
        nxt = []
        for q in queues:
            if depth < len(q):
                out.append(q[depth])
                nxt.append(q)
        queues = [q for q in nxt if depth + 1 < len(q)]
        depth += 1
    return out


def classify_failure(failure: Failure, url: str) -> tuple[str, str]:
    """(error, detail) for a request that ended without a usable response."""
    exc = failure.value
    msg = str(exc)[:300]
    if isinstance(exc, Refused):
        return exc.reason, exc.detail
    if isinstance(exc, IgnoreRequest):
        if "robots.txt" in msg:
            return "robots", ""
        if "DOWNLOAD_MAXSIZE" in msg:
            return "too_large", msg
        return "other", msg
    if isinstance(exc, DownloadCancelledError) or (isinstance(exc, StopDownload) and exc.fail):
        return "too_large", msg
    if isinstance(exc, TIMEOUTS):
        return "timeout", msg
    if isinstance(exc, DNS_FAILURES):
        host = normalize_host(urlsplit(url).hostname or "")
        if host in BLOCKED_NAMES:
            return "blocked_address", f"{host} -> {BLOCKED_NAMES[host]}"
        return "dns", msg
    if isinstance(exc, (gzip.BadGzipFile, zlib.error, EOFError)):
        return "bad_encoding", msg  # raised while decoding the body, not by the socket
    if isinstance(exc, (UnsupportedURLSchemeError, NotSupported)):
        return "invalid_url", msg
    if isinstance(
        exc,
        (
            DownloadConnectionRefusedError,
            DownloadFailedError,
            ResponseDataLossError,
            txerror.ConnectError,
            txerror.ConnectionLost,
            txerror.ConnectionDone,
            OSError,
        ),
    ):
        return "connection", msg
    return "other", f"{type(exc).__name__}: {msg}"


def _elapsed_ms(meta: dict[str, Any]) -> int | None:
    t0 = meta.get("t0")
    return None if t0 is None else round((time.monotonic() - t0) * 1000)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


class Recorder:
    """Turns each outcome into exactly one row per link; kept pages go to the WARC first."""

    def __init__(
        self,
        links: list[str],
        done: set[str],
        sink: ArchiveSink | None,
        content_types: list[str],
        progress: PartProgress | None = None,
        dead_pages: bool = False,
    ):
        self.progress = progress
        self.dead_pages = dead_pages  # judge 200 pages for soft 404s and parking
        self.links = set(links)
        self.done = set(done)
        self.sink = sink  # None: the benchmark's bare spider, which writes nothing
        self.content_types = {c.lower() for c in content_types}
        self.n_recorded = 0
        self.n_kept = 0

    def _emit(self, row: dict[str, Any], warc_kwargs: dict[str, Any] | None = None) -> None:
        url = row["url"]
        if url in self.done or url not in self.links:
            return  # a second outcome for a link (should not happen) never makes a second row
        self.done.add(url)
        self.n_recorded += 1
        if self.progress is not None:
            self.progress.advance()
        if row["error"] is None:
            self.n_kept += 1
        if self.sink is not None:
            self.sink.submit(row, warc_kwargs)

    def row(self, url: str, **kw: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "url": url,
            "final_url": None,
            "status": None,
            "content_type": None,
            "bytes": 0,
            "fetched_at": None,
            "elapsed_ms": None,
            "error": None,
            "detail": "",
            "warc_file": None,
            "warc_offset": None,
            "warc_length": None,
            "warc_end": None,
        }
        base.update(kw)
        return base

    def refuse(self, url: str, error: str, detail: str = "") -> None:
        self._emit(self.row(url, error=error, detail=detail))

    def failure(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        meta = request.meta
        link = meta["link"]
        error, detail = classify_failure(failure, request.url)
        reached_network = error not in ("robots", "blocked_address", "invalid_url")
        now = datetime.now(UTC)
        self._emit(
            self.row(
                link,
                final_url=request.url,
                fetched_at=_ms(now) if reached_network else None,
                elapsed_ms=_elapsed_ms(meta) if reached_network else None,
                error=error,
                detail=detail,
            )
        )

    def classify(self, response: Response) -> tuple[str | None, str]:
        status = response.status
        if 200 <= status < 300:
            ctype = media_type(response.headers.get(b"Content-Type"))
            if ctype is None:
                head = response.body[:1024].lstrip().lower()
                if not head.startswith(_HTML_SNIFF):
                    return "bad_content_type", "no Content-Type"
            elif ctype not in self.content_types:
                return "bad_content_type", ctype
            if not response.body:
                return "empty_body", ""
            if self.dead_pages:
                dead = judge_page(response.body)
                if dead is not None:
                    return dead
            return None, ""
        if 300 <= status < 400:
            return "http_3xx", f"status {status}"
        if 400 <= status < 500:
            return "http_4xx", f"status {status}"
        if status >= 500:
            return "http_5xx", f"status {status}"
        return "other", f"status {status}"

    def response(self, response: Response) -> None:
        meta = response.request.meta  # type: ignore[union-attr]
        link = meta["link"]
        if link in self.done:
            return
        now = datetime.now(UTC)
        error, detail = self.classify(response)
        row = self.row(
            link,
            final_url=response.url,
            status=response.status,
            content_type=media_type(response.headers.get(b"Content-Type")),
            bytes=len(response.body),
            fetched_at=_ms(now),
            elapsed_ms=_elapsed_ms(meta),
            error=error,
            detail=detail,
        )
        warc_kwargs = None
        wire = meta.pop(WIRE_GZIP, None)
        if error is None and self.sink is not None:
            encoded = wire is not None and is_single_gzip(wire, response.body)
            warc_kwargs = {
                "url": response.url,
                "request_line": f"GET {_path_of(response.url)} HTTP/1.1",
                "request_headers": _request_headers(response),
                "status": response.status,
                "headers": _header_pairs(response.headers),
                "body": wire if encoded else response.body,
                "content_encoding": b"gzip" if encoded else None,
                "fetched_at": now,
                "ip_address": str(response.ip_address) if response.ip_address else None,
            }
        self._emit(row, warc_kwargs)


def _path_of(url: str) -> str:
    p = urlsplit(url)
    return (p.path or "/") + (f"?{p.query}" if p.query else "")


def _header_pairs(headers: Any) -> list[tuple[bytes, bytes]]:
    # Scrapy's Headers is a dict of normalized name -> [values]; its items() re-normalizes
    # every value on the way out, which costs more than the WARC record itself.
    return [(k, v) for k, vs in dict.items(headers) for v in vs]


def _request_headers(response: Response) -> list[tuple[bytes, bytes]]:
    req = response.request
    headers = [(b"Host", urlsplit(response.url).netloc.encode("latin-1"))]
    if req is not None:
        headers += _header_pairs(req.headers)
    return headers


class LinkSpider(scrapy.Spider):
    name = "webtext"

    def __init__(self, links: list[str], recorder: Recorder, **kwargs: Any):
        super().__init__(**kwargs)
        self.links = links
        self.recorder = recorder
        self.t_open: float | None = None
        self.t_close: float | None = None
        self.cpu_open = self.cpu_close = 0.0
        self.close_reason: str | None = None
        self.feeder: HostFeeder | None = None
        self.window: LagWindow | None = None
        self._idle: MachineIdle | None = None
        self._health: Any = None
        self._wake: Any = None
        self._tick: Any = None
        self._tick_due = 0.0
        self._out = 0  # links handed out whose outcome has not reached a callback yet
        self._board: LoadBoard | None = None

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> LinkSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.on_headers, signal=signals.headers_received)
        crawler.signals.connect(spider.on_downloaded, signal=signals.response_downloaded)
        crawler.signals.connect(spider.on_opened, signal=signals.spider_opened)
        crawler.signals.connect(spider.on_closed, signal=signals.spider_closed)
        return spider

    def on_opened(self, spider: Any) -> None:
        self.t_open = time.monotonic()
        self.cpu_open = time.process_time()

    def on_closed(self, spider: Any, reason: str) -> None:
        if self._tick is not None and self._tick.active():
            self._tick.cancel()
        if self._board is not None:
            with contextlib.suppress(OSError):
                self._board.leave()
        self.close_reason = reason
        self.t_close = time.monotonic()
        self.cpu_close = time.process_time()

    def on_headers(self, headers: Any, body_length: int, request: Any, spider: Any) -> None:
        # Do not download a PDF or video only to throw it away; robots.txt has no "link".
        if "link" not in request.meta:
            return
        ctype = media_type(headers.get(b"Content-Type"))
        if ctype is not None and ctype not in self.recorder.content_types:
            raise StopDownload(fail=False)

    def on_downloaded(self, response: Any, request: Any, spider: Any) -> None:
        # The site's answer is in: its next link goes out now instead of after this answer
        # has made its way through Scrapy's queues to the callback (on a busy machine, a
        # tenth of a second or more per round trip of the largest sites). A redirect or
        # retry that follows waits in the site's downloader slot, which keeps the per-host
        # limit whatever the feeder hands out.
        link = request.meta.get("link")
        if link is None or self.feeder is None or self.feeder.site(link) is None:
            return
        self.feeder.done(link, answered=True)
        engine = self.crawler.engine
        if self._room(engine) and (next_request := self._next_request()) is not None:
            engine.crawl(next_request)

    async def start(self) -> AsyncIterator[Any]:
        # Links go out site by site as earlier ones finish (pipeline/crawl/feeder.py), not all
        # at once into Scrapy's scheduler.
        settings = self.crawler.settings
        per_host = settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")
        first_contact = first_contact_work(
            per_host,
            settings.getfloat("DOWNLOAD_TIMEOUT"),
            settings.getint("WEBTEXT_HOST_MAX_FAILURES", 3),
        )
        feeder = self.feeder = HostFeeder(
            [u for u in self.links if u not in self.recorder.done],
            per_host,
            first_contact,
            clock=time.monotonic,
        )
        self._health = getattr(self.crawler, "webtext_host_health", None)
        lag_target = settings.getfloat("WEBTEXT_LOOP_LAG_TARGET")
        if lag_target > 0:
            min_idle = settings.getfloat("WEBTEXT_MIN_CPU_IDLE")
            self.window = LagWindow(
                lag_target, settings.getint("CONCURRENT_REQUESTS"), min_idle=min_idle
            )
            self._idle = MachineIdle() if min_idle > 0 else None
            board = settings.get("WEBTEXT_LOAD_BOARD")
            if board:
                with contextlib.suppress(OSError):  # unwritable: equal shares, as without one
                    self._board = LoadBoard(Path(board), settings.get("WEBTEXT_PART", "part"))
            self._schedule_tick()
        engine = self.crawler.engine
        while not feeder.finished():
            if not self._room(engine):
                await self._pause(0.05)
                continue
            request = self._next_request()
            if request is None:
                if feeder.next_would_wait() and self._stalled(engine):
                    break  # outcomes that never came: the recorder gives them a row at the end
                await self._pause(0.5)
                continue
            yield request

    def _next_request(self) -> scrapy.Request | None:
        """The feeder's next link as a request; links of given-up sites and invalid URLs get
        their row here, without one. None when the feeder has nothing to hand out now."""
        assert self.feeder is not None
        while (url := self.feeder.next()) is not None:
            site = self.feeder.site(url) or ""
            given_up = self._health.detail(site) if self._health is not None else None
            if given_up is not None:
                for link in [url, *self.feeder.drain(site)]:
                    self.recorder.refuse(link, "host_unreachable", f"{site} {given_up}")
                self.feeder.done(url, timed=False)
                continue
            request = self.make_request(url)
            if request is None:
                self.recorder.refuse(url, "invalid_url", url[:200])
                self.feeder.done(url, timed=False)
                continue
            self._out += 1
            return request
        return None

    def _refill(self, link: str) -> Iterator[scrapy.Request]:
        """After an outcome: the next requests, straight from the callback. start() alone would
        hand out one request per turn of Scrapy's engine loop, fewer than a busy crawl ends."""
        if self.feeder is None:
            return
        self._out -= 1
        self.feeder.done(link)
        engine = self.crawler.engine
        for _ in range(REFILL):
            if not self._room(engine):
                break
            request = self._next_request()
            if request is None:
                break
            yield request
        self._wakeup()

    def _room(self, engine: Any) -> bool:
        """May another link go out now: Scrapy takes requests, and the window has a place or
        the link is a site's first. A site not contacted yet may be a host that hangs, given
        up only 45 s or more after its first contact: held back by a small window, such
        hosts on the benchmark web were first contacted 40-60 s in and ended their parts last."""
        if engine.needs_backout():
            return False
        if self.window is None or self.window.admits(self._out):
            return True
        return self.feeder is not None and self.feeder.next_is_first_contact()

    def _schedule_tick(self) -> None:
        from twisted.internet import reactor

        self._tick_due = time.monotonic() + TICK
        self._tick = reactor.callLater(TICK, self._on_tick)  # type: ignore[attr-defined,arg-type]

    def _on_tick(self) -> None:
        """How late the event loop is running: the window's measure of a busy process."""
        now = time.monotonic()
        assert self.window is not None
        idle = self._idle.read() if self._idle is not None else None
        self.window.observe(now - self._tick_due, now, idle)
        ticks = self.window.stats["ticks"]  # this one included
        if self._board is not None and self.feeder is not None and ticks % SHARE_TICKS == 1:
            left = self.feeder.links_left()
            try:
                self._board.publish(left)
                self.window.set_weight(self._board.weight(left))
            except OSError:
                self._board = None  # an unwritable board: equal shares, as without one
        self._schedule_tick()
        self._wakeup()  # a window that grew may let start() hand out more

    async def _pause(self, seconds: float) -> None:
        """Sleep until an outcome arrives or `seconds` pass."""
        from scrapy.utils.defer import maybe_deferred_to_future
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred

        wake: Deferred[None] = Deferred()
        self._wake = wake
        call: Any = reactor.callLater(seconds, self._wakeup)  # type: ignore[attr-defined,arg-type]
        await maybe_deferred_to_future(wake)
        if call.active():
            call.cancel()

    def _wakeup(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None and not wake.called:
            wake.callback(None)

    def _stalled(self, engine: Any) -> bool:
        """Links are out but nothing is left anywhere in Scrapy to bring their outcome."""
        slot = getattr(engine, "_slot", None)
        scheduler = getattr(slot, "scheduler", None)
        return (
            self.feeder is not None
            and len(self.feeder) > 0
            and not engine.downloader.active
            and scheduler is not None
            and not scheduler.has_pending_requests()
            and engine.scraper.slot is not None
            and engine.scraper.slot.is_idle()
        )

    def make_request(self, url: str) -> scrapy.Request | None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        try:
            return scrapy.Request(
                url,
                callback=self.parse,
                errback=self.on_error,
                dont_filter=True,
                meta={
                    "link": url,
                    "handle_httpstatus_all": True,
                    "download_slot": parts.netloc.lower(),
                },
            )
        except ValueError:
            return None

    def parse(self, response: Response, **kwargs: Any) -> Iterator[scrapy.Request]:
        self.recorder.response(response)
        yield from self._refill(response.request.meta["link"])  # type: ignore[union-attr]

    def on_error(self, failure: Failure) -> Iterator[scrapy.Request]:
        self.recorder.failure(failure)
        yield from self._refill(failure.request.meta["link"])  # type: ignore[attr-defined]
