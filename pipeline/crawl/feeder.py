"""Which link the spider asks for next.

Scrapy pulls start requests into its scheduler as fast as they come, and its downloader takes
a site's requests while that site's robots.txt is still on its way (they wait inside the
middlewares, where the per-site queue does not count them). A part whose first site had
thousands of links thus filled the whole crawl's concurrency with requests waiting on one
robots.txt, or on one dead host. The feeder hands out a site's links only while it has fewer
than `per_host` of them outstanding (asked for, no outcome yet), sites already under way
before new ones, and both by most links left first. The largest sites' politeness-bound crawl
is the part's critical path: they start first, and whenever a request slot frees, a site with
more links left gets it before one with fewer, so they stay at `per_host` in flight instead of
queueing behind the part's many small sites (on the benchmark web, a part ended about one
second per link of its largest site when sites took turns in arrival order).

A site not contacted yet counts as at least `first_contact` links: whatever its size, it may
be a host that hangs, and finding that out takes a fixed chain of timeouts (robots.txt, the
link, the retry, with pauses between: about a minute with the defaults). Started last, as the
smallest sites were, such a host became the part's tail (on the benchmark web, parts of about
100 s ran 140-165 s, ended by 1-link hosts started at 60-90 s). So a new site gets a free slot
before a site under way with fewer links left than that, and the largest sites keep theirs.
Scheduler and downloader queues stay small, so memory stays that of the links themselves.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from urllib.parse import urlsplit


def site_of(url: str) -> str:
    """The politeness unit: the download slot's key (host:port, lowercase)."""
    return urlsplit(url).netloc.lower()


def first_contact_links(per_host: int, timeout: float, max_failures: int, rtt: float = 1.0) -> int:
    """A new site's priority in links: what a site under way does (`per_host` at a time, an
    answer per `rtt` seconds) in the time a host that hangs takes to be given up (robots.txt
    and `max_failures` attempts, each a timeout, a pause of one between attempts)."""
    return round(per_host * (max_failures + 1) * timeout / rtt)


class HostFeeder:
    def __init__(self, urls: Iterable[str], per_host: int, first_contact: int = 0):
        self.per_host = max(1, per_host)
        self.first_contact = first_contact
        self.queues: dict[str, deque[str]] = {}
        for u in urls:
            self.queues.setdefault(site_of(u), deque()).append(u)
        self.new = sorted(self.queues, key=lambda h: (-len(self.queues[h]), h))
        self._next_new = 0
        # Sites under way with room for another request: (-links left, order offered, site).
        self.ready: list[tuple[int, int, str]] = []
        self._offers = 0
        self._in_ready: set[str] = set()
        self.outstanding: dict[str, int] = {}
        self._site_of_link: dict[str, str] = {}

    def __len__(self) -> int:
        """Links handed out and not yet done."""
        return len(self._site_of_link)

    def finished(self) -> bool:
        return not self.ready and self._next_new >= len(self.new) and not self._site_of_link

    def next_would_wait(self) -> bool:
        """Every site with links left is at its limit (or none has links left)."""
        return not self.ready and self._next_new >= len(self.new)

    def _ready_first(self) -> str | None:
        """The site under way that gets the next place, or None when a new site does (or
        nothing can go out). Sites drained since they were offered leave the heap here."""
        while self.ready:
            left, _, site = self.ready[0]
            if not (self.queues[site] and self.outstanding[site] < self.per_host):
                heapq.heappop(self.ready)
                self._in_ready.discard(site)
                continue
            if self._next_new < len(self.new):
                new_site = self.new[self._next_new]
                if max(len(self.queues[new_site]), self.first_contact) > -left:
                    return None
            return site
        return None

    def next_is_first_contact(self) -> bool:
        """Would next() hand out a site's first link (a site not contacted yet)?"""
        return self._ready_first() is None and self._next_new < len(self.new)

    def next(self) -> str | None:
        """The next link to request, or None while every site with links left is at its limit."""
        site = self._ready_first()
        if site is not None:
            heapq.heappop(self.ready)
            self._in_ready.discard(site)
            return self._take(site)
        if self._next_new < len(self.new):
            site = self.new[self._next_new]
            self._next_new += 1
            self.outstanding[site] = 0
            return self._take(site)
        return None

    def _take(self, site: str) -> str:
        url = self.queues[site].popleft()
        self.outstanding[site] += 1
        self._site_of_link[url] = site
        self._offer(site)
        return url

    def _offer(self, site: str) -> None:
        room = self.queues[site] and self.outstanding[site] < self.per_host
        if room and site not in self._in_ready:
            self._in_ready.add(site)
            self._offers += 1
            heapq.heappush(self.ready, (-len(self.queues[site]), self._offers, site))

    def done(self, url: str) -> None:
        """The link has its outcome; its site may have another request."""
        site = self._site_of_link.pop(url, None)
        if site is None:
            return
        self.outstanding[site] -= 1
        self._offer(site)

    def drain(self, site: str) -> list[str]:
        """Take every link of `site` not handed out yet (the site was given up)."""
        rest = list(self.queues.get(site, ()))
        if site in self.queues:
            self.queues[site].clear()
        return rest

    def site(self, url: str) -> str | None:
        return self._site_of_link.get(url)
