"""Hosts that keep failing are given up; per-host politeness holds while the crawl runs many
hosts at once. Real crawls (run_part, a Scrapy subprocess) against tests/crawl_server.py."""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from typing import Any

import pytest

from pipeline.core.io import read_table
from pipeline.crawl import run_part
from pipeline.crawl.feeder import HostFeeder, first_contact_work
from schemas.records import CRAWL_ERRORS
from tests.crawl_server import CrawlServer, Req, Resp, Site, html, plain_site
from tests.test_crawl import fast_cfg, fetch_rows, socket_free_port, write_links


async def _hang(req: Req, w: asyncio.StreamWriter) -> Resp:
    await asyncio.sleep(3600)  # accepts, reads the request, never answers
    return Resp(200)


def dead_site() -> Site:
    s = Site()
    s.prefix("/", _hang)
    return s


def slow_site(pages: int, delay: float) -> Site:
    s = Site(robots="User-agent: *\nDisallow: /private/\n")

    async def page(req: Req, w: asyncio.StreamWriter) -> Resp:
        await asyncio.sleep(delay)
        return Resp(200, html("p", "Some text. " * 40), [("Content-Type", "text/html")])

    s.prefix("/p/", page)
    return s


def test_host_unreachable_is_a_crawl_error() -> None:
    assert "host_unreachable" in CRAWL_ERRORS


@pytest.mark.parametrize("obey_robots", [True, False])
def test_dead_host_given_up_after_threshold(tmp_path, obey_robots: bool) -> None:
    server = CrawlServer([dead_site(), plain_site(4)]).start()
    try:
        dead = [server.url(0, f"/a/{i}.html") for i in range(12)]
        live = [server.url(1, f"/page{i}.html") for i in range(4)]
        with socket_free_port() as closed:
            pass
        refused = [f"http://127.0.0.1:{closed}/r/{i}" for i in range(5)]
        nxdomain = [f"http://gone-{i % 1}.no-such-host.invalid/n/{i}" for i in range(5)]
        links = write_links(
            tmp_path / "links" / "part-00000.parquet", dead + live + refused + nxdomain
        )
        cfg = fast_cfg(
            download_timeout=1.0,
            retry_times=2,
            host_max_failures=3,
            concurrent_per_domain=2,
            obey_robots=obey_robots,
        )
        stats = run_part(links, tmp_path, cfg)
        rows = fetch_rows(tmp_path)
        # The dead host saw exactly host_max_failures attempts (robots.txt included), never
        # one per link and retry (12 links x 3 tries = 36).
        attempts = [path for port, _m, path in server.log if port == server.ports[0]]
        assert len(attempts) == cfg.host_max_failures, attempts
    finally:
        server.stop()

    def errors(urls: list[str]) -> Counter:
        return Counter(rows[u]["error"] for u in urls)

    # With robots.txt, its one failed attempt counts and is not retried; the two links in
    # flight (concurrent_per_domain) make up the rest. Every other link: one clear row each.
    assert errors(dead) == {"timeout": 2, "host_unreachable": 10}
    assert errors(refused) == {"connection": 2, "host_unreachable": 3}
    assert errors(nxdomain) == {"dns": 2, "host_unreachable": 3}
    assert errors(live) == {None: 4}
    unreachable = [u for u in dead if rows[u]["error"] == "host_unreachable"]
    for u in unreachable:
        r = rows[u]
        # Never requested: no time, no elapsed, no status.
        assert r["fetched_at"] is None and r["elapsed_ms"] is None and r["status"] is None
    ledger = {
        r["key"]: r
        for r in read_table(tmp_path / "ledger" / "crawl" / "part-00000.parquet").to_pylist()
    }
    assert "given up after 3 failures in a row (last: timeout)" in ledger[unreachable[0]]["detail"]
    assert stats.dropped["host_unreachable"] == 16
    assert stats.n_in == len(rows) == 26 and stats.n_out == 4
    stats.check()


def test_per_host_concurrency_never_above_setting(tmp_path) -> None:
    sites = [slow_site(40, 0.15) for _ in range(6)]
    server = CrawlServer(sites).start()
    try:
        urls = [server.url(s, f"/p/{i}.html") for s in range(6) for i in range(40)]
        urls += [server.url(0, "/private/x.html")]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        cfg = fast_cfg(concurrent_per_domain=2, concurrent_requests=64, autothrottle=False)
        stats = run_part(links, tmp_path, cfg)
        per_port = dict(server.max_inflight)
        starts = sorted(t for t, _p, path in server.times if path.startswith("/p/"))
    finally:
        server.stop()
    assert stats.n_out == 240 and stats.dropped == {"robots": 1}
    # Every site reached its limit and none ever went over it.
    assert per_port == dict.fromkeys(server.ports, 2)
    # ...while the sites ran side by side: 240 pages of 0.15 s at 2 per site, one site after
    # another, would take 18 s.
    assert starts[-1] - starts[0] < 9


def test_a_host_that_answers_then_hangs_is_tried_no_more_than_host_max_failures(tmp_path) -> None:
    """Once the host has answered, a link waits in its download slot (the feeder's extra
    one); when the host then hangs, that link was counted in flight when it passed the
    host-health gate, so the host still sees only host_max_failures hanging attempts."""
    answered = []

    async def page(req: Req, w: asyncio.StreamWriter) -> Resp:
        if len(answered) >= 6:
            await asyncio.sleep(1.5)  # hangs past the 1 s timeout, done before a second ends
            return Resp(200, html("late", "Too late. " * 20), [("Content-Type", "text/html")])
        answered.append(req.path)
        await asyncio.sleep(0.05)
        return Resp(200, html("p", "Some text. " * 40), [("Content-Type", "text/html")])

    site = Site(robots="User-agent: *\nDisallow: /private/\n")
    site.prefix("/p/", page)
    server = CrawlServer([site]).start()
    try:
        urls = [server.url(0, f"/p/{i}.html") for i in range(20)]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        cfg = fast_cfg(
            download_timeout=1.0, retry_times=2, host_max_failures=3, concurrent_per_domain=2
        )
        stats = run_part(links, tmp_path, cfg)
        rows = fetch_rows(tmp_path)
        pages = [path for _port, _m, path in server.log if path.startswith("/p/")]
        most = server.max_inflight[server.ports[0]]
    finally:
        server.stop()
    assert len(answered) == 6 and len(pages) == 6 + cfg.host_max_failures
    assert Counter(r["error"] for r in rows.values()) == {
        None: 6,
        "timeout": 3,
        "host_unreachable": 11,
    }
    assert most == 2
    stats.check()


def test_feeder_order_and_limits() -> None:
    urls = [f"http://big.test/{i}" for i in range(5)]
    urls += [f"http://mid.test/{i}" for i in range(2)]
    urls += ["http://one.test/0"]
    f = HostFeeder(urls, per_host=2)
    # Largest site first, up to its limit, then the next sites by size.
    got = [f.next() for _ in range(5)]
    assert got == [
        "http://big.test/0",
        "http://big.test/1",
        "http://mid.test/0",
        "http://mid.test/1",
        "http://one.test/0",
    ]
    assert f.next() is None and len(f) == 5
    # An outcome frees room on its own site only; a site under way goes before new ones.
    f.done("http://mid.test/0")
    assert f.next() is None  # mid.test has nothing left
    f.done("http://big.test/0")
    assert f.next() == "http://big.test/2"
    assert f.drain("big.test") == ["http://big.test/3", "http://big.test/4"]
    for u in ["http://big.test/1", "http://big.test/2", "http://mid.test/1", "http://one.test/0"]:
        assert not f.finished()
        f.done(u)
    f.done("http://one.test/0")  # a second outcome for a link changes nothing
    assert f.next() is None and f.finished()


def test_a_site_that_answered_gets_one_link_waiting_in_its_slot() -> None:
    """per_host in flight is Scrapy's download slot's to keep; the feeder hands a site that
    has answered one link more, to wait in that slot. A site that has only failed (a host
    that may hang) stays at per_host."""
    urls = [f"http://ok.test/{i}" for i in range(6)] + [f"http://hangs.test/{i}" for i in range(5)]
    f = HostFeeder(urls, per_host=2)
    assert [f.next() for _ in range(5)] == [
        "http://ok.test/0",
        "http://ok.test/1",
        "http://hangs.test/0",
        "http://hangs.test/1",
        None,
    ]
    assert f.limit("ok.test") == f.limit("hangs.test") == 2
    f.done("http://ok.test/0", answered=True)
    f.done("http://hangs.test/0")  # a timeout: no answer
    assert f.limit("ok.test") == 3 and f.limit("hangs.test") == 2
    got = [f.next() for _ in range(4)]
    assert got[-1] is None
    assert sorted(got[:3]) == ["http://hangs.test/2", "http://ok.test/2", "http://ok.test/3"]
    assert f.outstanding == {"ok.test": 3, "hangs.test": 2}


def test_feeder_gives_a_free_slot_to_the_site_with_most_links_left() -> None:
    sizes = {"a.test": 10, "b.test": 3, "c.test": 4}
    f = HostFeeder([f"http://{h}/{i}" for h, n in sizes.items() for i in range(n)], per_host=1)
    assert [f.next() for _ in range(3)] == ["http://a.test/0", "http://c.test/0", "http://b.test/0"]
    # b.test's outcome comes first, then a.test's: a.test (9 left) goes before b.test (2 left).
    f.done("http://b.test/0")
    f.done("http://a.test/0")
    f.done("http://c.test/0")
    assert [f.next() for _ in range(3)] == ["http://a.test/1", "http://c.test/1", "http://b.test/1"]
    assert f.next() is None
    # Each site is handed out once per free slot, whatever the order of outcomes.
    order = []
    for _ in range(20):
        for url in list(f._site_of_link):
            f.done(url)
        order += [u for u in iter(f.next, None)]
    assert sorted(order) == sorted(f"http://{h}/{i}" for h, n in sizes.items() for i in range(2, n))
    for url in list(f._site_of_link):
        f.done(url)
    assert f.finished()


def test_feeder_starts_new_sites_before_small_ones_under_way() -> None:
    """A site not contacted yet may hang for a minute whatever its size: it counts as
    `first_contact` links against the sites under way, so it is not left for the part's end."""
    sizes = {"big.test": 12, "mid.test": 5, "one.test": 1, "two.test": 1}
    urls = [f"http://{h}/{i}" for h, n in sizes.items() for i in range(n)]
    f = HostFeeder(urls, per_host=1, first_contact=5)
    assert [f.next() for _ in range(2)] == ["http://big.test/0", "http://mid.test/0"]
    f.done("http://big.test/0")
    f.done("http://mid.test/0")
    # big.test (11 left) keeps its slot ahead of a new site; mid.test (4 left, fewer than
    # first_contact) gives way to the new sites, then takes its turn.
    assert [f.next() for _ in range(4)] == [
        "http://big.test/1",
        "http://one.test/0",
        "http://two.test/0",
        "http://mid.test/1",
    ]
    # Without it (first_contact 0, the order before): the small new sites come last.
    g = HostFeeder(urls, per_host=1)
    assert [g.next() for _ in range(2)] == ["http://big.test/0", "http://mid.test/0"]
    g.done("http://big.test/0")
    g.done("http://mid.test/0")
    assert [g.next() for _ in range(3)] == [
        "http://big.test/1",
        "http://mid.test/1",
        "http://one.test/0",
    ]


def test_first_contact_work_is_the_dead_host_chain() -> None:
    # Defaults: 2 per site, 15 s timeout, given up after 3 failures: robots.txt and two
    # attempts, 45 s one after another, in which a site under way gets through 90 s of work.
    assert first_contact_work(2, 15.0, 3) == 90.0
    assert first_contact_work(1, 10.0, 2) == 20.0


class StepClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_feeder_ranks_sites_by_links_left_times_their_time() -> None:
    """A small site whose links take long has more work left than a larger fast one, and gets
    the free slot first; a site with no link done yet counts at the part's mean."""
    sizes = {"fast.test": 9, "slow.test": 4, "new.test": 3}
    urls = [f"http://{h}/{i}" for h, n in sizes.items() for i in range(n)]
    clock = StepClock()
    f = HostFeeder(urls, per_host=1, clock=clock)
    assert [f.next() for _ in range(2)] == ["http://fast.test/0", "http://slow.test/0"]
    clock.now = 0.5
    f.done("http://fast.test/0")  # 0.5 s: 8 left -> 4 s of work
    assert f.work_left("fast.test") == 4.0
    assert f.next() == "http://fast.test/1"
    clock.now = 1.0
    f.done("http://fast.test/1")  # 0.5 s again: 7 left -> 3.5 s
    clock.now = 8.0
    f.done("http://slow.test/0")  # 8 s: 3 left -> 24 s of work
    assert f.work_left("slow.test") == 24.0
    # new.test has no time of its own: the part's mean, (0.5 + 0.5 + 8) / 3 s per link.
    assert f.work_left("new.test") == 3 * 3.0
    # Ranked by links left, fast.test (7) would go before new.test (3) and slow.test (3).
    assert [f.next() for _ in range(3)] == [
        "http://slow.test/1",
        "http://new.test/0",
        "http://fast.test/2",
    ]
    # A link that never went out (its site given up) says nothing about its site's time.
    clock.now = 100.0
    f.done("http://new.test/0", timed=False)
    assert f.seconds_per_link("new.test") == f.seconds_per_link("other.test") == 3.0


def _delays(pace: Any, answers: list[tuple[float, int]]) -> list[float]:
    """A site's delay after each (latency, status) answer."""
    from scrapy.core.downloader import Slot

    no_jitter = "jitter" in inspect.signature(Slot).parameters  # Scrapy >= 2.19
    slot = Slot(2, 1.0, **({"jitter": 0.0} if no_jitter else {"randomize_delay": False}))
    delays = []
    for latency, status in answers:
        pace(slot, latency, status)
        delays.append(round(slot.delay, 3))
    return delays


def test_median_throttle_ignores_one_slow_answer() -> None:
    from scrapy.extensions.throttle import AutoThrottle
    from scrapy.http import HtmlResponse
    from scrapy.utils.test import get_crawler

    from pipeline.crawl.runner import scrapy_settings
    from pipeline.crawl.throttle import MedianThrottle

    crawler = get_crawler(settings_dict=scrapy_settings(fast_cfg(autothrottle=True)))
    scrapy_throttle, median_throttle = AutoThrottle(crawler), MedianThrottle(crawler)
    for t in (scrapy_throttle, median_throttle):
        t.mindelay, t.maxdelay = 0.0, 30.0
    median_throttle.target_concurrency = scrapy_throttle.target_concurrency = 2.0

    def scrapy_pace(slot: Any, latency: float, status: int) -> None:
        scrapy_throttle._adjust_delay(slot, latency, HtmlResponse("http://a.test/", status=status))

    def median_pace(slot: Any, latency: float, status: int) -> None:
        median_throttle.pace("a.test", slot, latency, status)

    steady = [(0.4, 200)] * 5
    spike = steady + [(4.0, 200)] + steady[:2]
    # Scrapy's AutoThrottle: one 4 s answer among 0.4 s ones sets the delay to 2 s.
    assert _delays(scrapy_pace, spike)[5] == 2.0
    # The median keeps the site at 0.4 / 2 throughout.
    assert _delays(median_pace, spike) == [0.2] * 8
    # A site that stays slow is slowed down once slow answers are half the window.
    median_throttle._recent.clear()
    slow = _delays(median_pace, steady + [(4.0, 200)] * 6)
    assert slow[:9] == [0.2] * 9 and slow[9:] == [2.0, 2.0]
    # Fast error pages never lower the delay.
    median_throttle._recent.clear()
    assert _delays(median_pace, [(4.0, 200)] * 3 + [(0.01, 404)] * 5) == [2.0] * 8


def test_throttle_paces_a_real_crawl(tmp_path) -> None:
    """Through a real crawl: the extension gets every answer (a broken signal handler only
    logs an error and leaves every site at the start delay) and sets delays from latencies."""
    site = slow_site(pages=12, delay=0.05)
    server = CrawlServer([site]).start()
    try:
        urls = [server.url(0, f"/p/{i}.html") for i in range(12)]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        cfg = fast_cfg(autothrottle=True, autothrottle_start_delay=5.0)
        stats = run_part(links, tmp_path, cfg)
    finally:
        server.stop()
    log = (tmp_path / "crawl" / "logs" / "part-00000.log").read_text()
    assert "ERROR" not in log, log[-3000:]
    assert stats.n_out == 12
    # With the start delay of 5 s never lowered, 12 pages would take about a minute.
    rows = fetch_rows(tmp_path)
    span = max(r["fetched_at"] for r in rows.values()) - min(r["fetched_at"] for r in rows.values())
    assert span.total_seconds() < 20


def _crawl_with_stuck_pages(tmp_path, pages: int, stuck: dict[int, str], handler) -> tuple:
    """One site of `pages` pages of 0.05 s, with /stuck/ pages served by `handler` inserted
    at the given positions, crawled 2 per site with a 1 s timeout and one retry: the part's
    stats, the most requests the server saw at once, and (time, path) of every request."""
    site = slow_site(pages, 0.05)
    site.prefix("/stuck/", handler)
    server = CrawlServer([site]).start()
    try:
        urls = [server.url(0, f"/p/{i}.html") for i in range(pages)]
        for position, path in sorted(stuck.items()):
            urls[position:position] = [server.url(0, path)]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        cfg = fast_cfg(
            concurrent_per_domain=2, autothrottle=False, retry_times=1, host_max_failures=10
        )
        stats = run_part(links, tmp_path, cfg)
    finally:
        server.stop()
    times = sorted((t, path) for t, _, path in server.times)
    return stats, server.max_inflight[server.ports[0]], times


def test_a_timed_out_request_still_counts_at_the_server(tmp_path) -> None:
    """A request we stopped waiting for is still being worked on at the server: it keeps its
    place at the site for one more timeout, so the server never sees more than
    concurrent_per_domain of our requests at once."""

    async def stuck(req: Req, w: asyncio.StreamWriter) -> Resp:
        await asyncio.sleep(1.5)  # past the 1 s timeout, done before a second one ends
        return Resp(200, html("late", "Too late. " * 20), [("Content-Type", "text/html")])

    # Pages answered between the stuck ones keep the host from being given up.
    stats, most, times = _crawl_with_stuck_pages(
        tmp_path, 30, {10: "/stuck/0.html", 21: "/stuck/1.html"}, stuck
    )
    assert stats.n_out == 30 and stats.dropped == {"timeout": 2}
    assert [p for _, p in times].count("/stuck/0.html") == 2  # tried twice (one retry)
    assert [p for _, p in times].count("/stuck/1.html") == 2
    assert most == 2


def test_a_timed_out_request_holds_one_place_not_its_whole_site(tmp_path) -> None:
    """While the timed-out request keeps its place, the site's other place goes on: its retry
    and other pages are not held back a whole timeout (which made a timed-out page cost two)."""
    tries = []

    async def stuck(req: Req, w: asyncio.StreamWriter) -> Resp:
        tries.append(req.path)
        if len(tries) == 1:
            await asyncio.sleep(1.5)  # the server works on it past our 1 s timeout
        return Resp(200, html("late", "Answered. " * 20), [("Content-Type", "text/html")])

    stats, most, times = _crawl_with_stuck_pages(tmp_path, 80, {5: "/stuck/0.html"}, stuck)
    assert stats.n_out == 81 and stats.dropped == {}  # the retry got the page
    stuck_at = [t for t, path in times if path == "/stuck/0.html"]
    assert len(stuck_at) == 2  # the try and its retry
    # The retry went out at the first try's timeout (1 s), not after one more; the site's
    # pages went on beside the held place until that place was free again (2 s).
    assert stuck_at[1] - stuck_at[0] < 1.6
    assert [p for t, p in times if stuck_at[0] + 1.2 < t < stuck_at[0] + 1.8]
    # The server never saw more than 2 of ours at once, the abandoned try included.
    assert most == 2
