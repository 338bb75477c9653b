"""Archive fallback: a dead link's capture nearest to its post date, from a web archive.

Internet Archive (`wayback`): the CDX API lists captures
(`fl=timestamp,original,statuscode,mimetype,length`, `filter=statuscode:200`, nearest to the
post date first; JSON or space-separated text lines), and Wayback's `id_` mode serves the
original bytes of one (`/web/{timestamp}id_/{url}`, following its redirect to the exact
capture; `Memento-Datetime` names the capture time).

Common Crawl (`commoncrawl`): collinfo.json lists the crawls; the CDX servers of the
`crawl.archive.commoncrawl_crawls` crawls nearest to the post date are asked (JSON lines with
filename, offset, length), and the record is fetched by an HTTP byte range of the crawl's WARC
file: one gzip member, parsed with warcio.

Politeness and safety, as in the live crawl: a request rate per archive shared by every part
of a build (a lock file under OUT/crawl/_archive/, so threads and processes of one machine
queue on it; 0.5 request/s to the Internet Archive and 1/s to Common Crawl by default, below
what both document as acceptable for unauthenticated clients), retries of 429/503/5xx and
network errors honouring Retry-After (capped by crawl.max_retry_after) or else a doubling
backoff, the crawl's address guard on every connection and redirect hop
(pipeline/crawl/guard.py: the address connected to is the one vetted), crawl.max_bytes on
every body (decompressed too), and crawl.content_types on the capture. Requests go through
crawl.proxy when one is set, like the crawl's.

Recovered captures are written as request/response pairs into new WARC files of the part
(numbered after every existing one: earlier files are never touched), with WARC-Date the
capture time and `WARC-Source-URI` / `WebText-Source` naming the capture and the archive.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.core.config import CrawlConfig
from pipeline.crawl.archive.formats import (
    Capture,
    Failed,
    media_type,
    nearest,
    nearest_crawls,
    parse_cc_index,
    parse_cdx,
)
from pipeline.crawl.archive.sources import lookup
from pipeline.crawl.archive.transport import GuardedClient, RateGate, Session
from pipeline.crawl.warc import WarcRotator, part_warcs, warc_index

log = logging.getLogger(__name__)

VERSION = 1

__all__ = [
    "VERSION",
    "Capture",
    "Failed",
    "nearest",
    "nearest_crawls",
    "parse_cc_index",
    "parse_cdx",
    "recover",
]


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def recover(
    root: Path,
    part: str,
    links: list[tuple[str, datetime | None]],
    cfg: CrawlConfig,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict[str, Any]]:
    """{url: journal-style row fields} for each dead link: a kept capture, or the failure."""
    root = Path(root)
    acfg = cfg.archive
    gate_dir = root / "crawl" / "_archive"
    rates = {"wayback": acfg.rate_wayback, "commoncrawl": acfg.rate_commoncrawl}
    session = Session(
        cfg,
        {name: RateGate(gate_dir / f"{name}.rate", rate) for name, rate in rates.items()},
        GuardedClient(cfg, cfg.user_agent),
        sleep,
    )
    existing = [warc_index(p) for p in part_warcs(root / "crawl" / "warc", part)]
    warc: WarcRotator | None = None
    out: dict[str, dict[str, Any]] = {}
    try:
        for url, when in sorted(links, key=lambda x: x[0]):
            t0 = time.monotonic()
            got = lookup(session, url, when)
            if isinstance(got, Failed):
                out[url] = {"error": got.reason, "detail": got.detail, "source": "live"}
                continue
            if warc is None:
                warc = WarcRotator(
                    root,
                    part,
                    cfg.warc_max_bytes,
                    software=f"webtext-archive/{VERSION}",
                    info={"description": "captures of dead links from web archives"},
                    gzip_level=cfg.warc_gzip_level,
                    first_index=max(existing, default=-1) + 1,
                )
            parts = urlsplit(got.url)
            loc = warc.write(
                url=got.url,
                request_line=f"GET {(parts.path or '/')}{'?' + parts.query if parts.query else ''} HTTP/1.1",
                request_headers=[(b"Host", parts.netloc.encode("latin-1"))],
                status=got.status,
                headers=got.headers,
                body=got.body,
                fetched_at=got.captured_at,
                ip_address=None,
                extra=[("WARC-Source-URI", got.capture_url), ("WebText-Source", got.source)],
            )
            out[url] = {
                "error": None,
                "detail": "",
                "source": got.source,
                "final_url": got.url,
                "status": got.status,
                "content_type": media_type(got.content_type),
                "bytes": len(got.body),
                "fetched_at": _ms(datetime.now(UTC)),
                "captured_at": _ms(got.captured_at),
                "elapsed_ms": round((time.monotonic() - t0) * 1000),
                "warc_file": loc.file,
                "warc_offset": loc.offset,
                "warc_length": loc.length,
            }
    finally:
        if warc is not None:
            warc.close()
    return out
