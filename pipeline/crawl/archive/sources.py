"""The two archives: Wayback (CDX API + raw `id_` capture) and Common Crawl (collinfo, CDX
index, WARC byte range); `lookup` asks them in crawl.archive.sources order."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode, urljoin

from pipeline.core.config import CrawlConfig
from pipeline.crawl.archive.formats import (
    CDX_FIELDS,
    Capture,
    Failed,
    check_content,
    decode_body,
    media_type,
    nearest,
    nearest_crawls,
    parse_cc_index,
    parse_cdx,
    timestamp_of,
)
from pipeline.crawl.archive.transport import Response, Session


@dataclass(slots=True)
class Page:
    """A recovered capture, ready for the WARC archive."""

    source: str
    url: str  # the archived URL
    capture_url: str  # where the bytes were read (raw capture, WARC file#offset)
    captured_at: datetime
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    content_type: str | None


def _page_from_http(
    source: str,
    url: str,
    capture_url: str,
    captured_at: datetime,
    resp: Response,
    cfg: CrawlConfig,
) -> Page:
    body = decode_body(resp.body, resp.headers.get("content-encoding"), cfg.max_bytes)
    ctype = resp.headers.get("content-type")
    check_content(ctype, body, {c.lower() for c in cfg.content_types}, cfg.max_bytes)
    return Page(source, url, capture_url, captured_at, 200, resp.raw_headers, body, ctype)


def _html_first(captures: list[Capture], allowed: set[str]) -> list[Capture]:
    """Captures whose listed type is allowed (or unknown); raise when every one is another."""
    ok = [c for c in captures if media_type(c.mimetype) in allowed or not c.mimetype]
    ok += [c for c in captures if media_type(c.mimetype) in ("unk", "warc/revisit")]
    if not ok and captures:
        raise Failed("archive_bad_content_type", f"captures are {captures[0].mimetype}")
    return ok


def wayback(session: Session, url: str, when: datetime | None) -> Page:
    acfg, cfg = session.cfg.archive, session.cfg
    params = {
        "url": url,
        "output": acfg.wayback_output,
        "fl": ",".join(CDX_FIELDS),
        "filter": "statuscode:200",
        "limit": str(acfg.max_captures),
    }
    if when is not None:
        params.update(closest=timestamp_of(when), sort="closest")
    resp = session.get("wayback", f"{acfg.wayback_cdx}?{urlencode(params)}")
    if resp.status == 404:
        raise Failed("archive_miss", "no capture")
    if resp.status != 200:
        raise Failed("archive_unavailable", f"CDX status {resp.status}")
    try:
        text = decode_body(resp.body, resp.headers.get("content-encoding"), cfg.max_bytes)
        captures = parse_cdx(text.decode("utf-8", "replace"))
    except (ValueError, TypeError) as err:
        raise Failed("archive_bad_record", f"CDX: {err}"[:200]) from None
    if not captures:
        raise Failed("archive_miss", "no capture")
    best = _html_first(nearest(captures, when), {c.lower() for c in cfg.content_types})
    if not best:
        raise Failed("archive_miss", "no capture")
    cap = best[0]
    raw_url = acfg.wayback_raw.format(timestamp=cap.timestamp, url=cap.url)
    resp = session.get("wayback", raw_url)
    if resp.status != 200:
        raise Failed("archive_miss", f"raw capture status {resp.status}")
    captured_at = cap.when
    memento = resp.headers.get("memento-datetime")
    if memento:
        try:
            captured_at = parsedate_to_datetime(memento).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    return _page_from_http("wayback", cap.url, resp.url, captured_at, resp, cfg)


def _collinfo(session: Session) -> list[dict[str, Any]]:
    if session.collinfo is None:
        resp = session.get("commoncrawl", session.cfg.archive.commoncrawl_collinfo)
        if resp.status != 200:
            raise Failed("archive_unavailable", f"collinfo status {resp.status}")
        try:
            data = json.loads(decode_body(resp.body, resp.headers.get("content-encoding"), 1 << 26))
        except ValueError as err:
            raise Failed("archive_bad_record", f"collinfo: {err}") from None
        session.collinfo = (
            [c for c in data if isinstance(c, dict)] if isinstance(data, list) else []
        )
    return session.collinfo


def _read_warc_record(
    data: bytes, cfg: CrawlConfig
) -> tuple[int, list[tuple[bytes, bytes]], str | None, bytes, str]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    try:
        # The range must be exactly one whole gzip member: decompress it strictly first.
        d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        d.decompress(data, 0)
        if not d.eof:
            raise Failed("archive_bad_record", "truncated gzip member")
        for rec in ArchiveIterator(io.BytesIO(data)):
            if rec.rec_type != "response" or rec.http_headers is None:
                raise Failed("archive_bad_record", f"a {rec.rec_type} record, not a response")
            status = int(rec.http_headers.get_statuscode() or 0)
            body = rec.content_stream().read(cfg.max_bytes + 1)
            headers = [
                (k.encode("latin-1", "replace"), v.encode("latin-1", "replace"))
                for k, v in rec.http_headers.headers
            ]
            return (
                status,
                headers,
                rec.http_headers.get_header("Content-Type"),
                body,
                rec.rec_headers.get_header("WARC-Date") or "",
            )
    except (ArchiveLoadFailed, zlib.error, EOFError, ValueError, gzip.BadGzipFile) as err:
        raise Failed("archive_bad_record", f"{type(err).__name__}: {err}"[:200]) from None
    raise Failed("archive_bad_record", "no record in the range")


def commoncrawl(session: Session, url: str, when: datetime | None) -> Page:
    acfg, cfg = session.cfg.archive, session.cfg
    allowed = {c.lower() for c in cfg.content_types}
    captures: list[Capture] = []
    for crawl in nearest_crawls(_collinfo(session), when, acfg.commoncrawl_crawls):
        q = urlencode({"url": url, "output": "json", "limit": str(acfg.max_captures)})
        resp = session.get("commoncrawl", f"{crawl['cdx-api']}?{q}")
        if resp.status == 404:  # pywb's answer for "no captures"
            continue
        if resp.status != 200:
            raise Failed("archive_unavailable", f"index status {resp.status}")
        text = decode_body(resp.body, resp.headers.get("content-encoding"), 1 << 26)
        captures += parse_cc_index(text.decode("utf-8", "replace"), str(crawl.get("id")))
    if not captures:
        raise Failed("archive_miss", "no capture")
    best = _html_first(nearest(captures, when), allowed)
    if not best:
        raise Failed("archive_miss", "no capture")
    cap = best[0]
    assert cap.offset is not None and cap.length is not None
    if cap.length > cfg.max_bytes:
        raise Failed("archive_too_large", f"record of {cap.length} bytes > {cfg.max_bytes}")
    if "://" in cap.filename or cap.filename.startswith("/"):
        raise Failed("archive_bad_record", f"WARC filename {cap.filename[:200]!r} is not relative")
    warc_url = urljoin(acfg.commoncrawl_data, quote(cap.filename))
    end = cap.offset + cap.length - 1
    resp = session.get(
        "commoncrawl",
        warc_url,
        {"Range": f"bytes={cap.offset}-{end}", "Accept-Encoding": "identity"},
    )
    if resp.status not in (200, 206):
        raise Failed("archive_unavailable", f"WARC status {resp.status}")
    data = resp.body
    if resp.status == 200 and len(data) > cap.length:
        raise Failed("archive_bad_record", "server ignored the byte range")
    if len(data) != cap.length:
        raise Failed("archive_bad_record", f"truncated range: {len(data)} of {cap.length} bytes")
    status, headers, ctype, body, warc_date = _read_warc_record(data, cfg)
    if status != 200:
        raise Failed("archive_bad_record", f"record status {status}")
    if len(body) > cfg.max_bytes:
        raise Failed("archive_too_large", f"payload > {cfg.max_bytes} bytes")
    check_content(ctype, body, allowed, cfg.max_bytes)
    try:
        captured_at = datetime.fromisoformat(warc_date).astimezone(UTC)
    except ValueError:
        captured_at = cap.when
    return Page(
        "commoncrawl",
        cap.url,
        f"{warc_url}#{cap.offset}:{cap.length}",
        captured_at,
        200,
        headers,
        body,
        ctype,
    )


ARCHIVES: dict[str, Callable[[Session, str, datetime | None], Page]] = {
    "wayback": wayback,
    "commoncrawl": commoncrawl,
}

# When archives disagree, the reported failure is the most telling one.
_FAILURE_RANK = (
    "archive_blocked_address",
    "archive_too_large",
    "archive_bad_content_type",
    "archive_bad_record",
    "archive_unavailable",
    "archive_miss",
)


def lookup(session: Session, url: str, when: datetime | None) -> Page | Failed:
    """The first archive of crawl.archive.sources with a usable capture, else the failure."""
    failures: list[tuple[str, Failed]] = []
    for name in session.cfg.archive.sources:
        try:
            return ARCHIVES[name](session, url, when)
        except Failed as f:
            failures.append((name, f))
    if not failures:
        return Failed("archive_miss", "no archive configured")
    reason = min((f.reason for _, f in failures), key=_FAILURE_RANK.index)
    detail = "; ".join(f"{name}: {f.detail}" for name, f in failures)
    return Failed(reason, detail[:500])
