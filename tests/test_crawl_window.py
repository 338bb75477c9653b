"""The lag window (pipeline/crawl/window.py): its rule, and a real crawl it holds back."""

from __future__ import annotations

import asyncio
import time

import pytest

from pipeline.crawl import run_part
from pipeline.crawl.feeder import HostFeeder
from pipeline.crawl.window import (
    DECREASE,
    HOLD,
    MIN_WINDOW,
    WINDOW_STATS,
    LagWindow,
    MachineIdle,
)
from tests.crawl_server import CrawlServer, Req, Resp, Site, Writer, html
from tests.test_crawl import fast_cfg, fetch_rows, write_links


def test_admits_below_the_limit_only():
    w = LagWindow(target=0.05, ceiling=256)
    assert w.limit == MIN_WINDOW
    assert w.admits(MIN_WINDOW - 1) and not w.admits(MIN_WINDOW)
    assert LagWindow(target=0.05, ceiling=4).limit == 4  # never above concurrent_requests


def test_grows_only_when_it_held_links_back():
    w = LagWindow(target=0.1, ceiling=256)
    w.observe(0.001, now=0.0)
    assert w.limit == MIN_WINDOW  # nothing was held back: the window was not the limit
    w.admits(MIN_WINDOW)
    w.observe(0.001, now=0.1)  # far below the target: + limit // 8
    assert w.limit == MIN_WINDOW + MIN_WINDOW // 8
    w.lag = 0.0
    w.admits(w.limit)
    w.observe(0.14, now=0.2)  # smoothed 0.07: below the target, above half of it: + 1
    assert w.limit == MIN_WINDOW + MIN_WINDOW // 8 + 1


def test_grows_to_the_ceiling_and_no_further():
    w = LagWindow(target=0.05, ceiling=40)
    for i in range(100):
        w.admits(w.limit)
        w.observe(0.0, now=i * 0.1)
    assert w.limit == 40


def test_shrinks_once_per_hold_down_to_the_floor():
    w = LagWindow(target=0.05, ceiling=256, limit=200)
    w.observe(1.0, now=10.0)
    assert w.limit == int(200 * DECREASE)
    w.observe(1.0, now=10.0 + HOLD / 2)  # the last decrease has not had time to show
    assert w.limit == int(200 * DECREASE)
    w.observe(1.0, now=10.0 + HOLD)
    assert w.limit == int(int(200 * DECREASE) * DECREASE)
    for i in range(40):
        w.observe(1.0, now=20.0 + i * HOLD)
    assert w.limit == MIN_WINDOW
    s = w.summary()
    assert set(s) == set(WINDOW_STATS)
    assert s["window_min"] == MIN_WINDOW and s["window_max"] == 200
    assert s["window_decreases"] == 9  # 200 150 112 84 63 47 35 26 19 16
    assert s["late_ticks_share"] == 1.0 and s["loop_lag_max_s"] == 1.0


def test_a_busy_machine_shrinks_and_stops_growth():
    w = LagWindow(target=0.1, ceiling=256, limit=64, min_idle=0.05)
    w.idle = 0.0
    w.observe(0.0, now=1.0, idle=0.0)  # the loop keeps time, but no CPU is left idle
    assert w.limit == 48
    w.idle = 0.07
    w.admits(w.limit)
    w.observe(0.0, now=5.0, idle=0.07)  # between min_idle and twice that: hold
    assert w.limit == 48
    w.admits(w.limit)
    w.observe(0.0, now=5.1, idle=0.5)  # smoothed 0.285: room again
    assert w.limit == 48 + 48 // 8
    assert w.summary()["cpu_idle_mean"] == pytest.approx((0.0 + 0.07 + 0.5) / 3, abs=1e-3)


def test_machine_idle_from_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n")
    m = MachineIdle(stat)
    assert m.read() is None  # one reading is no interval
    stat.write_text("cpu  250 0 100 840 10 0 0 0 0 0\n")  # 200 jiffies, 50 idle or iowait
    assert m.read() == 0.25
    assert m.read() is None  # no time passed
    assert MachineIdle(tmp_path / "absent").read() is None
    real = MachineIdle()  # this machine's own, where there is one
    real.read()
    time.sleep(0.05)
    value = real.read()
    assert value is None or 0.0 <= value <= 1.0


def test_one_late_tick_is_smoothed():
    w = LagWindow(target=0.05, ceiling=256, limit=64)
    w.observe(0.08, now=1.0)  # counts half: 0.04
    assert w.limit == 64 and w.lag == pytest.approx(0.04)


async def _slow_page(req: Req, w: Writer) -> Resp:
    await asyncio.sleep(0.3)
    body = html("slow", "A page that takes its time. " * 20)
    return Resp(200, body, [("Content-Type", "text/html")])


def _slow_web(sites: int) -> CrawlServer:
    out = []
    for _ in range(sites):
        s = Site()
        s.prefix("/p", _slow_page)
        out.append(s)
    return CrawlServer(out).start()


def _crawl(tmp_path, server: CrawlServer, sites: int, pages: int, **cfg: object):
    urls = sorted(server.url(i, f"/p{j}") for i in range(sites) for j in range(pages))
    links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
    stats = run_part(links, tmp_path, fast_cfg(download_timeout=10.0, min_cpu_idle=0.0, **cfg))
    rows = fetch_rows(tmp_path)
    assert len(rows) == len(urls) and all(r["error"] is None for r in rows.values())
    assert stats.n_out == len(urls)
    return stats


@pytest.mark.parametrize("target", [1e-9, 0.0])
def test_window_bounds_a_real_crawl(tmp_path, target):
    """6 sites x 16 pages of 0.3 s, 8 at a time per site. A target no loop can keep (1 ns)
    holds the window at its floor: never more than MIN_WINDOW requests at the server at once.
    Without a window (target 0) the same crawl has up to 48 out together."""
    server = _slow_web(6)
    try:
        stats = _crawl(tmp_path, server, 6, 16, loop_lag_target=target, concurrent_per_domain=8)
        if target:
            assert server.max_inflight_total <= MIN_WINDOW
            assert stats.extra["window_max"] == MIN_WINDOW == stats.extra["window_min"]
            assert stats.extra["cpu_idle_mean"] is None  # min_cpu_idle 0: not read
        else:
            assert server.max_inflight_total > 2 * MIN_WINDOW
            assert not set(WINDOW_STATS) & set(stats.extra)
        assert max(server.max_inflight.values()) <= 8
    finally:
        server.stop()


def test_first_contacts_pass_a_full_window(tmp_path):
    """40 sites of one page each: every link is a site's first, and none waits for the
    window (a host that hangs must start its minute-long give-up early)."""
    server = _slow_web(40)
    try:
        stats = _crawl(tmp_path, server, 40, 1, loop_lag_target=1e-9)
        assert server.max_inflight_total > 2 * MIN_WINDOW
        assert stats.extra["window_max"] == MIN_WINDOW
    finally:
        server.stop()


def test_next_is_first_contact_says_what_next_does():
    urls = [f"http://s{i}.test/{j}" for i, n in enumerate([5, 3, 1, 1, 130]) for j in range(n)]
    f = HostFeeder(urls, per_host=2, first_contact=4)
    seen: set[str] = set()
    out: list[str] = []
    steps = 0
    while not f.finished():
        predicted = f.next_is_first_contact()
        url = f.next()
        if url is None:
            f.done(out.pop(0))  # an outcome frees a place
            continue
        site = url.split("/")[2]
        assert predicted == (site not in seen), url
        seen.add(site)
        out.append(url)
        steps += 1
    assert steps == len(urls) and len(seen) == 5
