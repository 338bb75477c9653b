"""The crawl process's garbage collector (pipeline/crawl/heap.py)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from pipeline.crawl import run_part
from pipeline.crawl.heap import (
    MIDDLE_THRESHOLD,
    OLD_THRESHOLD,
    YOUNG_THRESHOLD,
    CollectorClock,
)
from tests.crawl_server import CrawlServer, plain_site
from tests.test_crawl import fast_cfg, write_links

# Run in a fresh interpreter: freezing and thresholds are process-wide, not for pytest's.
PROBE = """
import gc, json, weakref
from pipeline.crawl.heap import tune_for_crawl

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)

kept = [Node() for _ in range(1000)]
before = cycle()  # garbage already: collected by the freeze, not frozen with the rest
tune_for_crawl()
after = cycle()  # garbage made during the crawl: still collected
alive_after_tune = after() is not None
gc.collect()
print(json.dumps({
    "threshold": gc.get_threshold(),
    "frozen": gc.get_freeze_count(),
    "before_collected": before() is None,
    "after_alive_until_collected": alive_after_tune,
    "after_collected": after() is None,
    "kept_frozen": not any(gc.is_tracked(k) and k in gc.get_objects() for k in kept[:3]),
}))
"""


def test_tune_freezes_the_setup_and_still_collects_later_cycles() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    got = json.loads(out)
    assert got["threshold"] == [YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD]
    assert got["frozen"] >= 1000  # the kept objects at least, plus the interpreter's
    assert got["kept_frozen"]  # frozen objects are in no generation a collection walks
    assert got["before_collected"]
    assert got["after_alive_until_collected"] and got["after_collected"]


def test_collector_clock_counts_only_while_started() -> None:
    clock = CollectorClock()
    was_enabled = gc.isenabled()
    gc.disable()  # only the explicit collections below
    try:
        gc.collect()
        clock.start()
        gc.collect()
        gc.collect(0)
        clock.stop()
        gc.collect()
    finally:
        if was_enabled:
            gc.enable()
    assert clock.collections == 2
    assert clock.seconds > 0
    assert clock not in gc.callbacks
    summary = clock.summary()
    assert summary["gc_collections"] == 2 and summary["gc_seconds"] == round(clock.seconds, 3)


def test_a_crawl_part_runs_frozen_and_reports_its_collector(tmp_path) -> None:
    """Through the fork server and as a plain subprocess: Scrapy's, Twisted's and pyarrow's
    objects are frozen before the reactor runs, and the stats say what the collector cost."""
    server = CrawlServer([plain_site(20)]).start()
    try:
        urls = [server.url(0, f"/page{i}.html") for i in range(20)]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        forked = run_part(links, tmp_path / "forked", fast_cfg())
        plain = run_part(links, tmp_path / "plain", fast_cfg(fork_server=False))
    finally:
        server.stop()
    for stats in (forked, plain):
        assert stats.n_out == 20
        assert stats.extra["gc_frozen"] > 50_000
        assert stats.extra["gc_collections"] >= 0 and stats.extra["gc_seconds"] >= 0
