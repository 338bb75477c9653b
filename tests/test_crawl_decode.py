"""The crawl's gzip decoder (pipeline/crawl/decode.py) against Scrapy's own, on the real
Scrapinghub pages and on the damaged bodies real servers send."""

from __future__ import annotations

import gzip

import pytest
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.http import HtmlResponse, Request
from scrapy.utils._compression import _DecompressionMaxSizeExceeded
from scrapy.utils.gz import gunzip as scrapy_gunzip
from scrapy.utils.test import get_crawler

from pipeline.core.config import CrawlConfig
from pipeline.crawl import decode
from pipeline.crawl.runner import scrapy_settings
from tests.test_crawl_units import SCRAPINGHUB


def real_pages() -> list[bytes]:
    paths = sorted(SCRAPINGHUB.glob("*.html.gz"))
    if not paths:
        pytest.skip(f"no pages under {SCRAPINGHUB}")
    return [gzip.decompress(p.read_bytes()) for p in paths]


def test_real_pages_decode_as_scrapy_decodes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = real_pages()
    assert len(pages) == 181
    wires = [gzip.compress(page, 6) for page in pages]
    assert [scrapy_gunzip(w) for w in wires] == pages
    # ...on the fast path alone: Scrapy's reading is only for damaged bodies.
    monkeypatch.setattr(decode, "scrapy_gunzip", None)
    assert [decode.gunzip(w) for w in wires] == pages


def _damaged(page: bytes) -> dict[str, bytes]:
    one = gzip.compress(page, mtime=0)
    bad_crc = bytearray(one)
    bad_crc[-6] ^= 0xFF
    return {
        "truncated": one[: len(one) - 40],
        "truncated in the header": one[:5],
        "bad checksum": bytes(bad_crc),
        "two members": gzip.compress(page[:500], mtime=0) + gzip.compress(page[500:], mtime=0),
        "trailing garbage": one + b"<html>garbage",
        "zero padding": one + b"\0" * 16,
        "not gzip": b"this is not gzip at all" * 10,
        "empty": b"",
    }


@pytest.mark.parametrize("case", list(_damaged(b"")))
def test_damaged_bodies_end_as_with_scrapy(case: str) -> None:
    """Whatever Scrapy's reading makes of a damaged body (what decoded before the damage, every
    member, or the error it raises), the fast decoder makes the same."""
    page = b"<html><body>" + b"A sentence of a real page. " * 2000 + b"</body></html>"
    body = _damaged(page)[case]
    try:
        expected: bytes | type[BaseException] = scrapy_gunzip(body)
    except Exception as err:  # noqa: BLE001 - the class is what is compared
        expected = type(err)
    if isinstance(expected, bytes):
        assert decode.gunzip(body) == expected
        assert len(expected) > 0 or case == "empty"
    else:
        with pytest.raises(expected):
            decode.gunzip(body)


@pytest.mark.parametrize("size", [1000, 65536, 65536 * 3, 65536 * 3 + 1])
def test_chunk_edges_and_the_size_limit(size: int) -> None:
    """Output that ends on a chunk boundary still decodes whole; past max_size it raises
    Scrapy's exception (which its middleware turns into IgnoreRequest, a `too_large` row)."""
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    wire = gzip.compress(data)
    assert decode.gunzip(wire) == data
    assert decode.gunzip(wire, max_size=size) == data
    with pytest.raises(_DecompressionMaxSizeExceeded):
        decode.gunzip(wire, max_size=size - 1)
    bomb = gzip.compress(b"\0" * (64 << 20), 9)
    with pytest.raises(_DecompressionMaxSizeExceeded):
        decode.gunzip(bomb, max_size=1 << 20)


def test_the_crawl_decodes_with_the_fast_middleware(monkeypatch: pytest.MonkeyPatch) -> None:
    """The crawl's settings put the fast middleware in Scrapy's place, and Scrapy's response
    handling calls its decoder (a Scrapy that stopped calling `_decode` would fail here)."""
    settings = scrapy_settings(CrawlConfig())
    mws = settings["DOWNLOADER_MIDDLEWARES"]
    assert mws["scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware"] is None
    assert mws["pipeline.crawl.decode.FastHttpCompressionMiddleware"] == 590
    calls = []
    fast_gunzip = decode.gunzip

    def counting(data: bytes, *, max_size: int = 0) -> bytes:
        calls.append(len(data))
        return fast_gunzip(data, max_size=max_size)

    monkeypatch.setattr(decode, "gunzip", counting)
    mw = decode.FastHttpCompressionMiddleware.from_crawler(get_crawler())
    assert isinstance(mw, HttpCompressionMiddleware)
    page = b"<html><title>t</title><body>" + b"text " * 5000 + b"</body></html>"
    wire = gzip.compress(page)
    response = HtmlResponse(
        "http://a.test/", body=wire, headers={"Content-Encoding": "gzip"}, encoding="utf-8"
    )
    decoded = mw.process_response(Request("http://a.test/"), response)
    assert decoded.body == page and b"Content-Encoding" not in decoded.headers
    assert calls == [len(wire)]
