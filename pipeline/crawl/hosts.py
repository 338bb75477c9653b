"""Giving up on a host that keeps failing.

A dead host (it accepts and hangs, refuses connections, or its name no longer resolves) would
otherwise cost every one of its links `retry_times + 1` timeouts. Here a host whose attempts
fail `host_max_failures` times in a row, with no answer in between, is given up: its other
links end as `host_unreachable` without a request (the spider asks before it even builds one),
and requests already on their way are refused before they reach the network. While a host has
failures and no answer since, attempts are let through only while failures + attempts in
flight stay under the threshold, so the host never sees more connection attempts than that.

Only failures to reach the host count: a host that answers, even with a 500 or a broken body,
is alive, and its answer resets the count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scrapy import Request
from scrapy.exceptions import DownloadConnectionRefusedError
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import error as txerror
from twisted.internet.defer import Deferred

from pipeline.crawl.feeder import site_of as host_key
from pipeline.crawl.guard import BlockedAddressError
from pipeline.crawl.middlewares import DNS_FAILURES, TIMEOUTS, Refused

_ATTEMPT = "_webtext_host_attempt"  # meta: this request is counted in flight for its host
LAST_FAILURE = "webtext_last_failure"  # meta: error class of the request's previous attempt


class GivenUp(Refused):
    """Refused because the host was given up (never itself counted as a failure)."""


def unreachable_reason(exc: BaseException) -> str | None:
    """The CRAWL_ERRORS class of a failure to reach the host at all, else None."""
    if isinstance(exc, BlockedAddressError):
        return None  # the guard's refusal, not the host's fault
    if isinstance(exc, Refused):
        return "dns" if exc.reason == "dns" and not isinstance(exc, GivenUp) else None
    if isinstance(exc, TIMEOUTS):
        return "timeout"
    if isinstance(exc, DNS_FAILURES):
        return "dns"
    if isinstance(exc, (DownloadConnectionRefusedError, txerror.ConnectError)):
        return "connection"
    return None


@dataclass
class _Host:
    failures: int = 0  # in a row, since the last answer
    inflight: int = 0
    last: str = ""
    waiters: list[Deferred[None]] = field(default_factory=list)


class HostHealth:
    """Per-host failure counts of one crawl process."""

    def __init__(self, max_failures: int):
        self.max_failures = max_failures
        self.hosts: dict[str, _Host] = {}
        self.given_up: dict[str, str] = {}  # host -> detail

    def detail(self, host: str) -> str | None:
        return self.given_up.get(host)

    def _may_start(self, h: _Host) -> bool:
        return h.failures == 0 or h.failures + h.inflight < self.max_failures

    async def acquire(self, host: str) -> str | None:
        """Wait until an attempt at `host` may start and count it; the give-up detail if the
        host was given up instead."""
        while True:
            if host in self.given_up:
                return self.given_up[host]
            h = self.hosts.setdefault(host, _Host())
            if self._may_start(h):
                h.inflight += 1
                return None
            d: Deferred[None] = Deferred()
            h.waiters.append(d)
            await maybe_deferred_to_future(d)

    def release(self, host: str, failure: str | None) -> None:
        """An attempt ended: answered (failure None) or failed to reach the host."""
        h = self.hosts.get(host)
        if h is None:
            return
        h.inflight = max(0, h.inflight - 1)
        self._outcome(host, h, failure)

    def failed_before_attempt(self, host: str, failure: str) -> None:
        """A failure to reach the host found before an attempt was counted (proxy DNS vet)."""
        self._outcome(host, self.hosts.setdefault(host, _Host()), failure)

    def _outcome(self, host: str, h: _Host, failure: str | None) -> None:
        if failure is None:
            h.failures = 0
        else:
            h.failures += 1
            h.last = failure
            if h.failures >= self.max_failures and host not in self.given_up:
                self.given_up[host] = (
                    f"given up after {h.failures} failures in a row (last: {failure})"
                )
        waiters, h.waiters = h.waiters, []
        for d in waiters:
            d.callback(None)
        if host in self.given_up and h.inflight == 0:
            self.hosts.pop(host, None)  # its state is the given_up entry from now on


class HostGiveUpMiddleware:
    """Downloader middleware at 650: after robots.txt on the way out (a request that waited for
    robots.txt is checked when it really leaves), first on the way back (it sees every answer
    and every failure before retries and redirects turn them into new requests)."""

    def __init__(self, health: HostHealth):
        self.health = health

    @classmethod
    def from_crawler(cls, crawler: Any) -> HostGiveUpMiddleware:
        health = HostHealth(crawler.settings.getint("WEBTEXT_HOST_MAX_FAILURES", 3))
        # The spider asks the same table before it builds a request for a link.
        crawler.webtext_host_health = health
        return cls(health)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        host = host_key(request.url)
        given_up = await self.health.acquire(host)
        if given_up is None:
            request.meta[_ATTEMPT] = host
            return
        last = request.meta.get(LAST_FAILURE)
        if last:
            # A retry: the link failed on its own attempt; that is its outcome.
            raise GivenUp(last, f"not retried: host {given_up}")
        raise GivenUp("host_unreachable", f"{host} {given_up}")

    def _end(self, request: Request, failure: str | None) -> None:
        host = request.meta.pop(_ATTEMPT, None)
        if host is not None:
            self.health.release(host, failure)

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        self._end(request, None)
        return response

    def process_exception(self, request: Request, exception: Exception, spider: Any = None) -> None:
        reason = unreachable_reason(exception)
        if request.meta.get(_ATTEMPT) is not None:
            self._end(request, reason)
        elif reason is not None:
            self.health.failed_before_attempt(host_key(request.url), reason)
        if reason is not None:
            request.meta[LAST_FAILURE] = reason
            if host_key(request.url) in self.health.given_up:
                request.meta["dont_retry"] = True  # the retry could only be refused
            elif request.meta.get("dont_obey_robotstxt"):
                # robots.txt that could not be reached is not retried: Scrapy then allows all,
                # as it would after the retries, and the links' own attempts tell a dead host
                # sooner (host_max_failures timeouts in parallel, not one after another).
                request.meta["dont_retry"] = True
