"""Which link the spider asks for next.

Scrapy pulls start requests into its scheduler as fast as they come, and its downloader takes
a site's requests while that site's robots.txt is still on its way (they wait inside the
middlewares, where the per-site queue does not count them). A part whose first site had
thousands of links thus filled the whole crawl's concurrency with requests waiting on one
robots.txt, or on one dead host. The feeder hands out a site's links only while it has fewer
than `per_host` of them outstanding (asked for, no outcome yet), sites already under way
before new ones, and both by most work left first: a site's links left times the time its
links take (hand-out to outcome, its mean so far; the part's mean for a site with none done
yet, 1 s before any). The politeness-bound crawl of the sites with most work left is the
part's critical path: they start first, and whenever a request slot frees, the site with more
work left gets it, so they stay at `per_host` in flight instead of queueing behind the part's
many small sites (on the benchmark web, a part ended about one second per link of its largest
site when sites took turns in arrival order). Work, not links: a site of 4 links that answer in
8 s each has more of it than one of 30 links at 0.5 s; ranked by links, the slow small site
waits behind every larger one and starts its slow links last.

A site not contacted yet counts as at least `first_contact` seconds of work: whatever its size,
it may be a host that hangs, and finding that out takes a fixed chain of timeouts (robots.txt,
the link, the retry: 45 s with the defaults). Started last, as the smallest sites were, such a
host became the part's tail (on the benchmark web, parts of about 100 s ran 140-165 s, ended by
1-link hosts started at 60-90 s). So a new site gets a free slot before a site under way with
less work left than that, and the largest sites keep theirs.
A site that has answered once gets one link more than `per_host`: Scrapy's download slot
keeps the site at `per_host` in flight, and the extra link waits there to leave the moment one
of the site's requests ends, instead of after that answer went through Scrapy's scheduler and
engine loop (0.2 s a round trip on a busy machine, for the largest sites, the part's end).
Scheduler and downloader queues stay small, so memory stays that of the links themselves.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit


def site_of(url: str) -> str:
    """The politeness unit: the download slot's key (host:port, lowercase)."""
    return urlsplit(url).netloc.lower()


def first_contact_work(per_host: int, timeout: float, max_failures: int) -> float:
    """A new site's priority in seconds of work (links x their time, `per_host` at a time):
    what a site under way gets through in the time a host that hangs takes to be given up:
    `max_failures` attempts (robots.txt the first), each a timeout, one after another."""
    return per_host * max_failures * timeout


class HostFeeder:
    """`clock`: seconds (time.monotonic); without one every link counts as `prior` seconds,
    and work is links left."""

    def __init__(
        self,
        urls: Iterable[str],
        per_host: int,
        first_contact: float = 0.0,
        clock: Callable[[], float] | None = None,
        prior: float = 1.0,
    ):
        self.per_host = max(1, per_host)
        self.first_contact = first_contact
        self.clock = clock
        self.prior = prior
        self.queues: dict[str, deque[str]] = {}
        for u in urls:
            self.queues.setdefault(site_of(u), deque()).append(u)
        self.new = sorted(self.queues, key=lambda h: (-len(self.queues[h]), h))
        self._next_new = 0
        # Sites under way with room for another request: (-work left, order offered, site).
        self.ready: list[tuple[float, int, str]] = []
        self._offers = 0
        self._in_ready: set[str] = set()
        self.outstanding: dict[str, int] = {}
        # Sites that have answered: one link more than per_host, which waits in the site's
        # download slot (Scrapy keeps the site at per_host in flight) and leaves the moment a
        # request ends, not after its answer has gone through the middlewares and the spider.
        self._answered: set[str] = set()
        self._site_of_link: dict[str, str] = {}
        self._handed_at: dict[str, float] = {}
        # Per site and for the part: seconds its links took, links timed.
        self._spent: dict[str, tuple[float, int]] = {}
        self._part_spent = (0.0, 0)

    def __len__(self) -> int:
        """Links handed out and not yet done."""
        return len(self._site_of_link)

    def links_left(self) -> int:
        """Links without an outcome: not handed out yet, or out."""
        return sum(len(q) for q in self.queues.values()) + len(self._site_of_link)

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
            if not (self.queues[site] and self.outstanding[site] < self.limit(site)):
                heapq.heappop(self.ready)
                self._in_ready.discard(site)
                continue
            if self._next_new < len(self.new):
                new_site = self.new[self._next_new]
                if max(self.work_left(new_site), self.first_contact) > -left:
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

    def limit(self, site: str) -> int:
        """Links of `site` that may be out at once."""
        return self.per_host + (site in self._answered)

    def seconds_per_link(self, site: str) -> float:
        spent, n = self._spent.get(site) or self._part_spent
        return spent / n if n else self.prior

    def work_left(self, site: str) -> float:
        return len(self.queues[site]) * self.seconds_per_link(site)

    def _take(self, site: str) -> str:
        url = self.queues[site].popleft()
        self.outstanding[site] += 1
        self._site_of_link[url] = site
        if self.clock is not None:
            self._handed_at[url] = self.clock()
        self._offer(site)
        return url

    def _offer(self, site: str) -> None:
        room = self.queues[site] and self.outstanding[site] < self.limit(site)
        if room and site not in self._in_ready:
            self._in_ready.add(site)
            self._offers += 1
            heapq.heappush(self.ready, (-self.work_left(site), self._offers, site))

    def done(self, url: str, timed: bool = True, answered: bool = False) -> None:
        """The link has its outcome; its site may have another request. `timed` False: the
        link never went out (its site was given up, its URL invalid), so its time says
        nothing about the site. `answered`: the site sent a response (any status), so it is
        no host that hangs, and gets a link waiting in its slot."""
        site = self._site_of_link.pop(url, None)
        if site is None:
            return
        if answered:
            self._answered.add(site)
        handed_at = self._handed_at.pop(url, None)
        if timed and handed_at is not None and self.clock is not None:
            took = self.clock() - handed_at
            spent, n = self._spent.get(site, (0.0, 0))
            self._spent[site] = (spent + took, n + 1)
            spent, n = self._part_spent
            self._part_spent = (spent + took, n + 1)
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
