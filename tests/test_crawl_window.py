"""The lag window (pipeline/crawl/window.py): its rule, and a real crawl it holds back."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.crawl import run_part
from pipeline.crawl.window import DECREASE, HOLD, MIN_WINDOW, WINDOW_STATS, LagWindow
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


def test_one_late_tick_is_smoothed():
    w = LagWindow(target=0.05, ceiling=256, limit=64)
    w.observe(0.08, now=1.0)  # counts half: 0.04
    assert w.limit == 64 and w.lag == pytest.approx(0.04)


async def _slow_page(req: Req, w: Writer) -> Resp:
    await asyncio.sleep(0.3)
    return Resp(
        200, html("slow", "A page that takes its time. " * 20), [("Content-Type", "text/html")]
    )


def _slow_web(sites: int) -> CrawlServer:
    out = []
    for _ in range(sites):
        s = Site()
        s.prefix("/p", _slow_page)
        out.append(s)
    return CrawlServer(out).start()


@pytest.mark.parametrize("target", [1e-9, 0.0])
def test_window_bounds_a_real_crawl(tmp_path, target):
    """40 sites x 2 pages of 0.3 s. A target no loop can keep (1 ns) holds the window at its
    floor: never more than MIN_WINDOW requests at the server at once. Without a window
    (target 0) the same crawl has every site's pages out together."""
    server = _slow_web(40)
    try:
        urls = sorted(server.url(i, f"/p{j}") for i in range(40) for j in range(2))
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        stats = run_part(links, tmp_path, fast_cfg(loop_lag_target=target, download_timeout=10.0))
        rows = fetch_rows(tmp_path)
        assert len(rows) == 80 and all(r["error"] is None for r in rows.values())
        assert stats.n_out == 80
        if target:
            assert server.max_inflight_total <= MIN_WINDOW
            assert stats.extra["window_max"] == MIN_WINDOW == stats.extra["window_min"]
        else:
            assert server.max_inflight_total > 2 * MIN_WINDOW
            assert not set(WINDOW_STATS) & set(stats.extra)
        assert max(server.max_inflight.values()) <= fast_cfg().concurrent_per_domain
    finally:
        server.stop()
