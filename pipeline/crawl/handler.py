"""Scrapy's HTTP/1.1 download handler, except that a request that runs out of time keeps its
place at its site for one more timeout.

We gave up waiting, but the server may still be working on the request: counted as gone, the
site's next request would make concurrent_per_domain + 1 of ours at the server. The place is
taken here, inside the download, before Scrapy's downloader frees the request's place and
starts whatever waits in the site's slot (the feeder keeps one link waiting there for a site
that answers, pipeline/crawl/feeder.py). Taken later, in a middleware, that link would already
be out. The place is a token in the download slot's set of requests under way (a Scrapy
internal, the set its concurrency limit counts); without that set, RetryAfterMiddleware pauses
the whole site instead (pipeline/crawl/middlewares.py).
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.http import Response

from pipeline.crawl.middlewares import PLACE_HELD, TIMEOUTS, site_slot


class _HeldPlace:
    """Stands for an abandoned request in its slot's set of requests under way."""

    __slots__ = ("url",)

    def __init__(self, url: str):
        self.url = url


def hold_place(crawler: Any, request: Request, seconds: float) -> bool:
    """Count one more request under way at `request`'s site for `seconds`; False if the
    downloader's slot internals are not there."""
    try:
        from scrapy.utils.asyncio import call_later

        downloader, key, slot = site_slot(crawler, request)
        if slot is None or not isinstance(slot.transferring, set):
            return False
        held = _HeldPlace(request.url)
        slot.transferring.add(held)

        def release() -> None:
            slot.transferring.discard(held)
            if downloader.slots.get(key) is slot:
                downloader._process_queue(slot)

        call_later(seconds, release)
        return True
    except (AttributeError, ImportError):
        return False


class PlaceHoldingDownloadHandler(HTTP11DownloadHandler):
    def __init__(self, crawler: Any):
        super().__init__(crawler)
        self._timeout = crawler.settings.getfloat("DOWNLOAD_TIMEOUT")

    async def download_request(self, request: Request) -> Response:
        try:
            return await super().download_request(request)
        except TIMEOUTS:
            seconds = float(request.meta.get("download_timeout", self._timeout))
            # Set either way: a retry is a copy of this request, meta included.
            request.meta[PLACE_HELD] = hold_place(self._crawler, request, seconds)
            raise
