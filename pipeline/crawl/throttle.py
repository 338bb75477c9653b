"""AutoThrottle paced by a site's typical latency instead of its latest one.

Scrapy's AutoThrottle moves a site's delay halfway to latency / target after every answer, and
all the way up when that is higher: one 4 s answer among 0.4 s ones sets the delay to 2 s, and
it takes several answers to come back down. Real latencies are heavy-tailed, so most large sites
spent much of the crawl slowed by their own outliers (the benchmark's crawl tail was mostly such
delays). Here the delay is median(last WINDOW latencies) / target: one slow answer moves nothing,
a site that stays slow for half the window is slowed down as before. Error answers (non-200)
still never lower a delay, as in Scrapy.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from statistics import median
from typing import Any

from scrapy.extensions.throttle import AutoThrottle

WINDOW = 9
# Sites whose latencies are remembered; a site beyond it starts a fresh window (memory of a part
# with hundreds of thousands of sites stays bounded).
MAX_SITES = 20_000


class MedianThrottle(AutoThrottle):
    def __init__(self, crawler: Any):
        super().__init__(crawler)
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()

    def _latencies(self, key: str) -> deque[float]:
        recent = self._recent.get(key)
        if recent is None:
            recent = self._recent[key] = deque(maxlen=WINDOW)
            if len(self._recent) > MAX_SITES:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(key)
        return recent

    def _response_downloaded(self, response: Any, request: Any, spider: Any = None) -> None:
        # The response is not tied to its request yet here: the site comes from the request.
        key = request.meta.get("download_slot")
        slot = self.crawler.engine.downloader.slots.get(key) if key is not None else None
        latency = request.meta.get("download_latency")
        if latency is None or slot is None or request.meta.get("autothrottle_dont_adjust_delay"):
            return
        self.pace(key, slot, latency, response.status)

    def pace(self, key: str, slot: Any, latency: float, status: int) -> None:
        recent = self._latencies(key)
        recent.append(latency)
        new_delay = min(max(self.mindelay, median(recent) / self.target_concurrency), self.maxdelay)
        if status != 200 and new_delay <= slot.delay:
            return
        slot.delay = new_delay
