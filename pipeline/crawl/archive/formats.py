"""The archives' formats and the choices made on them: CDX rows (Wayback JSON and text
lines, Common Crawl JSON lines), the capture nearest to a date, the crawls nearest to it, and
the content rules every recovered body passes (size, type, Content-Encoding)."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_HTML_SNIFF = (b"<!doctype html", b"<html", b"<head", b"<body")
CDX_FIELDS = ("timestamp", "original", "statuscode", "mimetype", "length")


class Failed(Exception):
    """The lookup of one link in one archive ended without bytes; `reason` is a CRAWL_ERRORS
    value (archive_*)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Capture:
    timestamp: str  # 14 digits, UTC
    url: str  # the archived (original) URL
    mimetype: str = ""
    length: int | None = None
    filename: str = ""  # Common Crawl: WARC file of the record
    offset: int | None = None
    crawl: str = ""

    @property
    def when(self) -> datetime:
        return parse_timestamp(self.timestamp)


def parse_timestamp(ts: str) -> datetime:
    ts = (ts + "00000000000000")[:14]
    return datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def timestamp_of(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def parse_cdx(text: str, fields: tuple[str, ...] = CDX_FIELDS) -> list[Capture]:
    """Rows of a Wayback CDX answer: JSON (a header row, then one list per capture) or text
    (one capture per line, `fields` separated by spaces). Malformed rows are skipped."""
    text = text.strip()
    if not text:
        return []
    rows: list[dict[str, str]] = []
    if text.startswith("["):
        data = json.loads(text)
        if data and isinstance(data[0], list):
            header = [str(h) for h in data[0]]
            rows = [dict(zip(header, map(str, r), strict=False)) for r in data[1:]]
    else:
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == len(fields):
                rows.append(dict(zip(fields, parts, strict=True)))
    out = []
    for r in rows:
        ts, original = r.get("timestamp", ""), r.get("original", "")
        if not (ts.isdigit() and len(ts) >= 4 and original):
            continue
        if r.get("statuscode", "200") != "200":
            continue
        length = r.get("length", "")
        out.append(
            Capture(ts, original, r.get("mimetype", ""), int(length) if length.isdigit() else None)
        )
    return out


def parse_cc_index(text: str, crawl: str) -> list[Capture]:
    """Captures of a Common Crawl CDX answer (`output=json`: one JSON object per line)."""
    out = []
    for line in text.splitlines():
        try:
            r = json.loads(line)
            if str(r.get("status", "")) != "200":
                continue
            out.append(
                Capture(
                    timestamp=str(r["timestamp"]),
                    url=str(r["url"]),
                    mimetype=str(r.get("mime-detected") or r.get("mime") or ""),
                    length=int(r["length"]),
                    filename=str(r["filename"]),
                    offset=int(r["offset"]),
                    crawl=crawl,
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return out


def nearest(captures: list[Capture], when: datetime | None) -> list[Capture]:
    """Captures by distance to `when` (ties: the earlier one); without a date, oldest first."""
    if when is None:
        return sorted(captures, key=lambda c: (c.timestamp, c.url))
    t = when.timestamp()
    return sorted(captures, key=lambda c: (abs(c.when.timestamp() - t), c.timestamp, c.url))


def crawl_time(crawl: dict[str, Any]) -> datetime | None:
    """Middle of a Common Crawl crawl: its from/to fields, else its id CC-MAIN-YYYY-WW."""
    try:
        if crawl.get("from") and crawl.get("to"):
            a = datetime.fromisoformat(str(crawl["from"]))
            b = datetime.fromisoformat(str(crawl["to"]))
            a, b = (x if x.tzinfo else x.replace(tzinfo=UTC) for x in (a, b))
            return a + (b - a) / 2
        year, week = str(crawl["id"]).rsplit("-", 2)[-2:]
        return datetime.fromisocalendar(int(year), int(week), 3).replace(tzinfo=UTC)
    except (ValueError, KeyError, TypeError):
        return None


def nearest_crawls(
    collinfo: list[dict[str, Any]], when: datetime | None, n: int
) -> list[dict[str, Any]]:
    dated = [(t, c) for c in collinfo if (t := crawl_time(c)) is not None and c.get("cdx-api")]
    if when is None:
        when = datetime(2017, 12, 31, tzinfo=UTC)
    dated.sort(key=lambda tc: (abs((tc[0] - when).total_seconds()), str(tc[1].get("id"))))
    return [c for _, c in dated[:n]]


def media_type(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def check_content(content_type: str | None, body: bytes, allowed: set[str], max_bytes: int) -> None:
    if len(body) > max_bytes:
        raise Failed("archive_too_large", f"{len(body)} bytes > {max_bytes}")
    ctype = media_type(content_type)
    if ctype is None:
        if not body[:1024].lstrip().lower().startswith(_HTML_SNIFF):
            raise Failed("archive_bad_content_type", "no Content-Type")
    elif ctype not in allowed:
        raise Failed("archive_bad_content_type", ctype)
    if not body:
        raise Failed("archive_bad_record", "empty body")


def decode_body(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """Undo a Content-Encoding (gzip, deflate), never inflating past max_bytes."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc in ("gzip", "x-gzip", "deflate"):
        wbits = zlib.MAX_WBITS | 32 if enc != "deflate" else zlib.MAX_WBITS
        try:
            d = zlib.decompressobj(wbits)
            out = d.decompress(body, max_bytes + 1)
        except zlib.error:
            try:
                out = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, max_bytes + 1)
            except zlib.error as err:
                raise Failed("archive_bad_record", f"bad {enc} body: {err}") from None
        if len(out) > max_bytes:
            raise Failed("archive_too_large", f"decompressed body > {max_bytes} bytes")
        return out
    raise Failed("archive_bad_record", f"unsupported Content-Encoding {enc}")
