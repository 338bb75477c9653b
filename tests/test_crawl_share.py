"""Parts' shares of a busy machine by their links left (pipeline/crawl/share.py) and the
weighed lag window (pipeline/crawl/window.py)."""

from __future__ import annotations

import os
import time

from pipeline.crawl import run_part
from pipeline.crawl.share import MAX_WEIGHT, MIN_WEIGHT, STALE, LoadBoard
from pipeline.crawl.window import MIN_FLOOR, MIN_WINDOW, LagWindow
from tests.crawl_server import CrawlServer, plain_site
from tests.test_crawl import fast_cfg, write_links


def test_weight_is_links_left_over_the_running_parts_mean(tmp_path) -> None:
    a = LoadBoard(tmp_path, "part-00000", host="m1")
    b = LoadBoard(tmp_path, "part-00001", host="m1")
    c = LoadBoard(tmp_path, "part-00002", host="m1")
    other_machine = LoadBoard(tmp_path, "part-00003", host="m2")
    a.publish(3000)
    b.publish(1000)
    c.publish(2000)
    other_machine.publish(100_000)  # another machine's CPU: not counted
    assert a.weight(3000) == 1.5 and b.weight(1000) == 0.5 and c.weight(2000) == 1.0
    # A part that stopped publishing (ended, killed) drops out after STALE seconds.
    old = time.time() - STALE - 1
    os.utime(b.path, (old, old))
    assert a.weight(3000) == 3000 / 2500
    b.leave()
    c.leave()
    assert a.weight(3000) == 1.0  # alone
    # Bounded: no part starved, none takes the whole machine.
    d, e = (LoadBoard(tmp_path, f"part-0001{i}", host="m1") for i in range(2))
    for board in (b, c, d, e):
        board.publish(0)
    assert a.weight(1000) == MAX_WEIGHT  # 1,000 over a mean of 200
    b.publish(4000)
    assert c.weight(0) == MIN_WEIGHT
    # Half-written or foreign files are skipped, not fatal.
    (tmp_path / "m1@part-00005").write_text("not a number")
    (tmp_path / "m1@part-00006.tmp").write_text("5")
    LoadBoard(tmp_path, "part-00007", host="m1.b").publish(10**6)  # another host named m1.b
    for board in (c, d, e):
        board.leave()
    assert a.weight(2000) == 2000 / 3000


def test_the_window_floor_and_growth_follow_the_weight() -> None:
    heavy, light = LagWindow(target=0.1, ceiling=256), LagWindow(target=0.1, ceiling=256)
    heavy.set_weight(2.0)
    light.set_weight(0.5)
    assert (heavy.floor, light.floor) == (2 * MIN_WINDOW, MIN_WINDOW // 2)
    assert heavy.limit == 2 * MIN_WINDOW  # raised to its new floor at once
    assert LagWindow(target=0.1, ceiling=256, weight=0.01).floor == MIN_FLOOR
    # Near the target both grow while held back, by their weights (a fraction carried over).
    for w in (heavy, light):
        w.limit, w.lag = 40, 0.08
        for i in range(10):
            w.admits(w.limit)
            w.observe(0.08, now=i * 0.1)
    assert (heavy.limit, light.limit) == (60, 45)
    # Saturated, both shrink to their own floors: the heavy part keeps 4x the light one's.
    for i in range(60):
        heavy.observe(1.0, now=10 + i)
        light.observe(1.0, now=10 + i)
    assert (heavy.limit, light.limit) == (2 * MIN_WINDOW, MIN_WINDOW // 2)
    assert heavy.summary()["weight_mean"] == 2.0


def test_a_crawl_publishes_its_links_left_and_leaves_the_board(tmp_path) -> None:
    """A real part: its entry on the board while it runs, none once it ended; its stats say
    the weight it ran with (alone on the board: 1)."""
    server = CrawlServer([plain_site(30)]).start()
    try:
        urls = [server.url(0, f"/page{i}.html") for i in range(30)]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        stats = run_part(links, tmp_path, fast_cfg())
    finally:
        server.stop()
    assert stats.n_out == 30
    assert stats.extra["weight_mean"] == 1.0
    board = tmp_path / "crawl" / "_work" / "_load"
    assert board.is_dir() and list(board.iterdir()) == []
    off = run_part(links, tmp_path / "off", fast_cfg(share_by_work=False))
    assert off.extra["weight_mean"] == 1.0
    assert not (tmp_path / "off" / "crawl" / "_work" / "_load").exists()


def test_two_parts_at_once_weigh_by_their_links_left(tmp_path) -> None:
    """Two real parts of one build crawling at once: the one with three times the links runs
    with the larger weight, the other with the smaller, and both leave the board."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.test_crawl_hosts import slow_site

    server = CrawlServer([slow_site(60, 0.25), slow_site(20, 0.25)]).start()
    try:
        big = [server.url(0, f"/p/{i}.html") for i in range(60)]
        small = [server.url(1, f"/p/{i}.html") for i in range(20)]
        parts = [
            write_links(tmp_path / "links" / "part-00000.parquet", big),
            write_links(tmp_path / "links" / "part-00001.parquet", small),
        ]
        cfg = fast_cfg(concurrent_per_domain=2)
        with ThreadPoolExecutor(2) as pool:
            big_stats, small_stats = pool.map(lambda p: run_part(p, tmp_path, cfg), parts)
    finally:
        server.stop()
    assert (big_stats.n_out, small_stats.n_out) == (60, 20)
    assert big_stats.extra["weight_mean"] > 1.0 > small_stats.extra["weight_mean"]
    assert list((tmp_path / "crawl" / "_work" / "_load").iterdir()) == []
