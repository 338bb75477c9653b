"""gzip Content-Encoding decoded with ISA-L (python-isal), Scrapy's reading otherwise.

Decoding the pages was a sixth of a crawl process's CPU on the benchmark web (sampled with
py-spy: Scrapy's `gunzip` reads through the stdlib's GzipFile and zlib); ISA-L's inflate is
about 2.3x faster on the real Scrapinghub pages. Only the common case takes the fast path: one
complete gzip member, nothing after it. A truncated body, a bad checksum, several members or
trailing bytes go to Scrapy's `gunzip`, whose rules (keep what decoded before the damage, read
every member) decide them exactly as before.
"""

from __future__ import annotations

from typing import cast

from isal import isal_zlib
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.utils._compression import _CHUNK_SIZE, _check_max_size
from scrapy.utils.gz import gunzip as scrapy_gunzip

GZIP_WBITS = 31  # a gzip header and trailer around a deflate stream
# The class of isal's errors (its type stubs declare `error` as an instance).
ISAL_ERROR = cast(type[Exception], isal_zlib.error)


def gunzip(data: bytes, *, max_size: int = 0) -> bytes:
    """`data` decoded; raises Scrapy's _DecompressionMaxSizeExceeded past `max_size` bytes
    (0: no limit), as Scrapy's gunzip does, after at most one chunk more."""
    inflater = isal_zlib.decompressobj(GZIP_WBITS)
    out: list[bytes] = []
    size = 0
    try:
        chunk = inflater.decompress(data, _CHUNK_SIZE)
        while True:
            size += len(chunk)
            _check_max_size(size, max_size)
            out.append(chunk)
            if inflater.eof or not (inflater.unconsumed_tail or len(chunk) == _CHUNK_SIZE):
                break
            chunk = inflater.decompress(inflater.unconsumed_tail, _CHUNK_SIZE)
    except ISAL_ERROR:
        return scrapy_gunzip(data, max_size=max_size)
    if not inflater.eof or inflater.unused_data:
        return scrapy_gunzip(data, max_size=max_size)
    return b"".join(out)


class FastHttpCompressionMiddleware(HttpCompressionMiddleware):
    """Scrapy's middleware (size limits, response classes, headers) with the gzip decoder
    above; deflate, br and zstd stay Scrapy's."""

    @staticmethod
    def _decode(body: bytes, encoding: bytes, max_size: int) -> bytes:
        if encoding in (b"gzip", b"x-gzip"):
            return gunzip(body, max_size=max_size)
        return HttpCompressionMiddleware._decode(body, encoding, max_size)
