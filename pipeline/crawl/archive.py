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

import fcntl
import gzip
import http.client
import io
import json
import logging
import socket
import ssl
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

from pipeline.core.config import CrawlConfig
from pipeline.crawl.warc import WarcRotator, part_warcs, warc_index

log = logging.getLogger(__name__)

VERSION = 1
_HTML_SNIFF = (b"<!doctype html", b"<html", b"<head", b"<body")
_CDX_FIELDS = ("timestamp", "original", "statuscode", "mimetype", "length")
_RETRY_STATUS = {429, 500, 502, 503, 504}
_REDIRECTS = {301, 302, 303, 307, 308}


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


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes
    url: str  # after redirects


# ---------------------------------------------------------------------------------------------
# pure parts: formats and choices


def parse_timestamp(ts: str) -> datetime:
    ts = (ts + "00000000000000")[:14]
    return datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def timestamp_of(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def parse_cdx(text: str, fields: tuple[str, ...] = _CDX_FIELDS) -> list[Capture]:
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


# ---------------------------------------------------------------------------------------------
# transport: guarded HTTP, a rate per archive, retries


class RateGate:
    """At most `rate` requests per second to one archive from every process of a build: the
    time of the next free slot lives in a lock file, and a waiter sleeps holding the lock."""

    def __init__(self, path: Path, rate: float):
        self.path = path
        self.interval = 1.0 / rate
        path.parent.mkdir(parents=True, exist_ok=True)

    def wait(self) -> None:
        with open(self.path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0)
                try:
                    last = float(f.read().strip() or 0.0)
                except ValueError:
                    last = 0.0
                now = time.time()
                slot = max(now, last + self.interval)
                if slot > now:
                    time.sleep(slot - now)
                f.seek(0)
                f.truncate()
                f.write(repr(slot))
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


class _Connection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        # The vetted address, not a second lookup that could answer differently (rebinding).
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _TLSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class GuardedClient:
    """GET with the crawl's address guard on every hop, a size cap and manual redirects."""

    def __init__(self, cfg: CrawlConfig, user_agent: str):
        from pipeline.crawl.guard import HostPolicy

        self.policy = HostPolicy(cfg.allow_hosts, cfg.proxy)
        self.proxy = urlsplit(cfg.proxy) if cfg.proxy else None
        self.timeout = cfg.archive.timeout
        self.max_bytes = cfg.max_bytes
        self.max_redirects = cfg.max_redirects
        self.user_agent = user_agent

    def _address(self, host: str, port: int) -> str:
        """The address to connect to, vetted; "" for an allowed name behind the proxy (the
        proxy resolves it, as in the crawl's GuardMiddleware)."""
        from pipeline.crawl.guard import parse_ip

        if self.proxy is not None and self.policy.allowed(host):
            return ""
        if parse_ip(host) is not None:
            if self.policy.refuse_literal(host):
                raise Failed("archive_blocked_address", host)
            return host.strip("[]")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as err:
            raise Failed("archive_unavailable", f"dns: {host}: {err}") from None
        address = str(infos[0][4][0])
        if self.policy.refuse_resolved(host, address):
            raise Failed("archive_blocked_address", f"{host} -> {address}")
        return address

    def _once(self, url: str, headers: dict[str, str]) -> Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Failed("archive_bad_record", f"not an http(s) URL: {url[:200]}")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = self._address(host, port)  # vetted even behind a proxy
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn: http.client.HTTPConnection
        if self.proxy is not None:
            phost, pport = self.proxy.hostname or "", self.proxy.port or 80
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(phost, pport, timeout=self.timeout)
                conn.set_tunnel(host, port)
            else:
                conn = http.client.HTTPConnection(phost, pport, timeout=self.timeout)
                path = url
        elif parts.scheme == "https":
            conn = _TLSConnection(host, port, address, self.timeout)
        else:
            conn = _Connection(host, port, address, self.timeout)
        try:
            conn.request(
                "GET",
                path,
                headers={
                    "User-Agent": self.user_agent,
                    "Accept-Encoding": "gzip",
                    "Host": parts.netloc,
                    **headers,
                },
            )
            resp = conn.getresponse()
            lower = {k.lower(): v for k, v in resp.getheaders()}
            declared = lower.get("content-length", "")
            # A compressed archive record may be larger than its page; allow some slack.
            cap = self.max_bytes + 65536
            if declared.isdigit() and int(declared) > cap:
                raise Failed("archive_too_large", f"Content-Length {declared} > {cap}")
            body = resp.read(cap + 1)
            if len(body) > cap:
                raise Failed("archive_too_large", f"body > {cap} bytes")
            if declared.isdigit() and len(body) < int(declared):
                raise Failed("archive_bad_record", f"truncated: {len(body)} of {declared} bytes")
            raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.getheaders()]
            return Response(resp.status, lower, raw, body, url)
        except (OSError, http.client.HTTPException) as err:
            raise _Transient(f"{type(err).__name__}: {err}"[:200]) from None
        finally:
            conn.close()

    def get(self, url: str, headers: dict[str, str] | None = None) -> Response:
        seen = [url]
        for _ in range(self.max_redirects + 1):
            resp = self._once(url, headers or {})
            location = resp.headers.get("location")
            if resp.status not in _REDIRECTS or not location:
                return resp
            url = urljoin(url, location.strip())
            if url in seen:
                raise Failed("archive_bad_record", f"redirect loop at {url[:200]}")
            seen.append(url)
        raise Failed("archive_bad_record", f"more than {self.max_redirects} redirects")


class _Transient(Exception):
    """A network error worth a retry."""


def retry_after(value: str | None, cap: float) -> float | None:
    if not value:
        return None
    try:
        delay = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(delay, cap))


@dataclass
class Session:
    """One archive step: the client, a gate per archive, retries with backoff."""

    cfg: CrawlConfig
    gates: dict[str, RateGate]
    client: GuardedClient
    sleep: Callable[[float], None] = time.sleep
    requests: dict[str, int] = field(default_factory=dict)  # per archive, retries included
    collinfo: list[dict[str, Any]] | None = None  # Common Crawl's crawls, read once per step

    def get(self, archive: str, url: str, headers: dict[str, str] | None = None) -> Response:
        acfg = self.cfg.archive
        what = ""
        for attempt in range(acfg.retries + 1):
            self.gates[archive].wait()
            self.requests[archive] = self.requests.get(archive, 0) + 1
            wait = acfg.backoff * 2**attempt
            try:
                resp = self.client.get(url, headers)
            except _Transient as err:
                what = str(err)
            else:
                if resp.status not in _RETRY_STATUS:
                    return resp
                what = f"status {resp.status}"
                ra = retry_after(resp.headers.get("retry-after"), self.cfg.max_retry_after)
                if ra is not None:
                    wait = ra
            if attempt < acfg.retries:
                self.sleep(wait)
        raise Failed("archive_unavailable", f"{what} after {acfg.retries + 1} tries")


# ---------------------------------------------------------------------------------------------
# the two archives


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
        "fl": ",".join(_CDX_FIELDS),
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


# ---------------------------------------------------------------------------------------------
# the step


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
