"""Pure pieces of the crawl stage: address guard, Retry-After, ordering, journal, WARC files."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import ipaddress
import logging
import subprocess
import sys
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from pipeline.crawl.guard import HostPolicy, is_forbidden_ip, parse_ip
from pipeline.crawl.journal import Journal, last_warc_location, read_journal
from pipeline.crawl.middlewares import retry_after_seconds
from pipeline.crawl.spider import media_type, round_robin
from pipeline.crawl.warc import (
    WarcRotator,
    consistent_headers,
    is_single_gzip,
    part_warcs,
    read_response,
)

SCRAPINGHUB = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "extraction"
    / "scrapinghub"
    / "html"
)


@pytest.mark.parametrize(
    "addr",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "100.64.0.1",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",
    ],
)
def test_forbidden_addresses(addr: str) -> None:
    assert is_forbidden_ip(ipaddress.ip_address(addr))


@pytest.mark.parametrize("addr", ["8.8.8.8", "151.101.1.69", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(addr: str) -> None:
    assert not is_forbidden_ip(ipaddress.ip_address(addr))


def test_host_policy() -> None:
    p = HostPolicy(
        ["127.0.0.1", "WWW.Daily-Ledger.test.", ".wikipedia.org"], proxy="http://localhost:8080"
    )
    assert p.allowed("127.0.0.1") and p.allowed("www.daily-ledger.test")
    assert p.allowed("en.wikipedia.org") and p.allowed("wikipedia.org")
    assert not p.allowed("evilwikipedia.org") and not p.allowed("daily-ledger.test")
    assert (
        p.refuse_literal("127.0.0.2")
        and p.refuse_literal("[::1]")
        and not p.refuse_literal("127.0.0.1")
    )
    assert not p.refuse_literal("8.8.8.8") and not p.refuse_literal("example.com")
    # The resolver: a name is judged by its address, the proxy is always reachable.
    assert p.refuse_resolved("example.com", "10.0.0.7")
    assert not p.refuse_resolved("example.com", "93.184.216.34")
    assert not p.refuse_resolved("localhost", "127.0.0.1")  # the proxy host
    assert HostPolicy([]).refuse_resolved("localhost", "127.0.0.1")
    assert parse_ip("[::1]") == ipaddress.ip_address("::1") and parse_ip("a.b") is None


def test_retry_after() -> None:
    assert retry_after_seconds(b"3", cap=30) == 3.0
    assert retry_after_seconds(b"3600", cap=30) == 30.0
    assert retry_after_seconds(b"-5", cap=30) == 0.0
    assert retry_after_seconds(None, cap=30) == 0.0
    assert retry_after_seconds(b"soon", cap=30) == 0.0
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=12), usegmt=True).encode()
    assert retry_after_seconds(date, cap=30, now=now) == 12.0
    assert retry_after_seconds(date, cap=5, now=now) == 5.0


def test_round_robin_interleaves_sites() -> None:
    urls = (
        [f"http://a.test/{i}" for i in range(3)]
        + ["http://b.test/0"]
        + [f"http://c.test/{i}" for i in range(2)]
    )
    assert round_robin(urls) == [
        "http://a.test/0",
        "http://b.test/0",
        "http://c.test/0",
        "http://a.test/1",
        "http://c.test/1",
        "http://a.test/2",
    ]
    assert sorted(round_robin(urls)) == sorted(urls)


def test_media_type() -> None:
    assert media_type(b"Text/HTML; charset=Windows-1251") == "text/html"
    assert media_type(b"") is None and media_type(None) is None


def test_consistent_headers() -> None:
    h = [
        (b"Content-Type", b"text/html"),
        (b"Content-Encoding", b"gzip"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Content-Length", b"99"),
        (b"X-A", b"1"),
    ]
    assert consistent_headers(h, 1234) == [
        (b"Content-Type", b"text/html"),
        (b"X-A", b"1"),
        (b"Content-Length", b"1234"),
    ]


def test_consistent_headers_keep_the_stored_coding() -> None:
    h = [(b"Content-Encoding", b"gzip"), (b"Content-Length", b"99")]
    assert consistent_headers(h, 50, b"gzip") == [
        (b"Content-Encoding", b"gzip"),
        (b"Content-Length", b"50"),
    ]


def test_is_single_gzip() -> None:
    page = b"<html><body>" + b"words and more words " * 400 + b"</body></html>"
    one = gzip.compress(page, mtime=0)
    assert is_single_gzip(one, page)
    assert not is_single_gzip(gzip.compress(page[:100]) + gzip.compress(page[100:]), page)
    assert not is_single_gzip(one + b"trailing junk", page)
    assert not is_single_gzip(one, page + b"x")  # decoded by someone else into other bytes
    assert not is_single_gzip(zlib.compress(page), page)  # zlib (deflate), not gzip
    assert not is_single_gzip(b"", b"")


def test_warc_keeps_a_gzip_body_as_it_came(tmp_path: Path) -> None:
    pages = [gzip.decompress(f.read_bytes()) for f in sorted(SCRAPINGHUB.glob("*.html.gz"))[:5]]
    pages.append(b"")  # an empty gzip stream: stored blocks of nothing
    w = WarcRotator(tmp_path, "part-00000", max_bytes=1 << 30, software="t", info={})
    locs = []
    for i, page in enumerate(pages):
        wire = gzip.compress(page, compresslevel=6, mtime=0)
        locs.append(
            w.write(
                f"http://site.test/{i}",
                f"GET /{i} HTTP/1.1",
                [(b"Host", b"site.test")],
                200,
                [(b"Content-Type", b"text/html")],
                wire,
                datetime(2024, 5, 1, tzinfo=UTC),
                None,
                content_encoding=b"gzip",
            )
        )
    w.close()
    warc = part_warcs(tmp_path / "crawl" / "warc", "part-00000")[0]
    check = subprocess.run(
        [str(Path(sys.executable).parent / "warcio"), "check", "-v", str(warc)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    data = warc.read_bytes()
    for i, (page, loc) in enumerate(zip(pages, locs, strict=True)):
        member = data[loc.offset : loc.offset + loc.length]
        # One whole gzip member per record: gzip itself checks its CRC and length.
        record = gzip.decompress(member)
        wire = gzip.compress(page, compresslevel=6, mtime=0)
        assert record.endswith(b"\r\n\r\n" + wire + b"\r\n\r\n")
        uri, status, headers, body = read_response(warc, loc.offset, loc.length)
        assert (uri, status, body) == (f"http://site.test/{i}", 200, page)
        assert ("Content-Encoding", "gzip") in headers
        assert ("Content-Length", str(len(wire))) in headers
        rec = next(iter(ArchiveIterator(io.BytesIO(member))))
        digest = base64.b32encode(hashlib.sha1(wire).digest()).decode()
        assert rec.rec_headers.get_header("WARC-Payload-Digest") == f"sha1:{digest}"
        # The payload is stored, not deflated again: the member is the wire bytes plus headers.
        assert len(wire) < loc.length < len(wire) + 1200


def test_journal_torn_tail_and_foreign_header(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    header = {"config": "abc", "links_sha256": "x", "version": 1}
    j = Journal(path, header, None)
    j.append({"url": "http://a/1", "error": None})
    j.append({"url": "http://a/2", "error": "http_4xx"})
    j.close()
    with open(path, "a") as f:
        f.write('{"url": "http://a/3", "err')  # killed mid-line
    rows = read_journal(path, header)
    assert [r["url"] for r in rows] == ["http://a/1", "http://a/2"]
    assert read_journal(path, {**header, "config": "other"}) is None
    assert read_journal(tmp_path / "none.jsonl", header) is None
    # Reopening drops the torn tail, so the next line is whole.
    j = Journal(path, header, rows)
    j.append({"url": "http://a/3", "error": None})
    j.close()
    assert [r["url"] for r in read_journal(path, header)] == [
        "http://a/1",
        "http://a/2",
        "http://a/3",
    ]


def _write_pages(w: WarcRotator, n: int, start: int = 0) -> list[dict]:
    out = []
    for i in range(start, start + n):
        body = f"<html><body>page {i} {'x' * 300}</body></html>".encode()
        loc = w.write(
            f"http://site.test/{i}",
            f"GET /{i} HTTP/1.1",
            [(b"Host", b"site.test")],
            200,
            [(b"Content-Type", b"text/html"), (b"Content-Encoding", b"gzip")],
            body,
            datetime(2024, 5, 1, tzinfo=UTC),
            "93.184.216.34",
        )
        out.append(
            {
                "url": f"http://site.test/{i}",
                "warc_file": loc.file,
                "warc_offset": loc.offset,
                "warc_length": loc.length,
                "warc_end": loc.end,
                "body": body,
            }
        )
    return out


def test_warc_records_rotation_and_recovery(tmp_path: Path) -> None:
    w = WarcRotator(tmp_path, "part-00002", max_bytes=1200, software="t", info={})
    rows = _write_pages(w, 9)
    w.close()
    files = part_warcs(tmp_path / "crawl" / "warc", "part-00002")
    assert len(files) >= 3
    for r in rows:
        uri, status, headers, body = read_response(
            tmp_path / r["warc_file"], r["warc_offset"], r["warc_length"]
        )
        assert (uri, status, body) == (r["url"], 200, r["body"])
        assert ("Content-Encoding", "gzip") not in headers
    # Every file opens with a warcinfo record; request/response pairs follow.
    with open(files[0], "rb") as f:
        types = [rec.rec_type for rec in ArchiveIterator(f)]
    assert types[0] == "warcinfo" and set(types[1:]) == {"request", "response"}

    # A kill after row 4 was journaled: later bytes and later files go, rows 0-4 stay intact.
    journaled = rows[:5]
    w2 = WarcRotator(tmp_path, "part-00002", max_bytes=1200, software="t", info={})
    w2.recover(last_warc_location(journaled))
    left = part_warcs(tmp_path / "crawl" / "warc", "part-00002")
    assert left[-1].name == Path(journaled[-1]["warc_file"]).name
    assert left[-1].stat().st_size == journaled[-1]["warc_end"]
    more = _write_pages(w2, 4, start=5)
    w2.close()
    seen = []
    for p in part_warcs(tmp_path / "crawl" / "warc", "part-00002"):
        with open(p, "rb") as f:
            seen += [
                rec.rec_headers.get_header("WARC-Target-URI")
                for rec in ArchiveIterator(f)
                if rec.rec_type == "response"
            ]
    assert seen == [r["url"] for r in journaled + more]
    for r in journaled + more:
        assert (
            read_response(tmp_path / r["warc_file"], r["warc_offset"], r["warc_length"])[3]
            == r["body"]
        )


def test_warc_recover_without_rows_removes_files(tmp_path: Path) -> None:
    w = WarcRotator(tmp_path, "part-00003", max_bytes=10_000, software="t", info={})
    _write_pages(w, 2)
    w.close()
    w = WarcRotator(tmp_path, "part-00003", max_bytes=10_000, software="t", info={})
    w.recover(None)
    assert part_warcs(tmp_path / "crawl" / "warc", "part-00003") == []


def test_crawled_messages_only_at_debug() -> None:
    """The per-response "Crawled (200)" record is not built unless the crawl logs at DEBUG;
    the formatter's other messages stay Scrapy's."""
    from scrapy.http import HtmlResponse, Request
    from scrapy.utils.test import get_crawler

    from pipeline.core.config import CrawlConfig
    from pipeline.crawl.runner import QuietLogFormatter, scrapy_settings

    settings = scrapy_settings(CrawlConfig())
    assert settings["LOG_FORMATTER"] == "pipeline.crawl.runner.QuietLogFormatter"
    request = Request("http://a.test/")
    response = HtmlResponse("http://a.test/", body=b"<html></html>", request=request)
    for level, logged in (("INFO", False), ("info", False), ("DEBUG", True), (10, True)):
        formatter = QuietLogFormatter.from_crawler(get_crawler(settings_dict={"LOG_LEVEL": level}))
        entry = formatter.crawled(request, response, None)
        assert (entry is not None) == logged
        if logged:
            assert entry["args"]["status"] == 200
    error = formatter.download_error(ValueError("x"), request, None, "down")
    assert error is not None and error["level"] == logging.ERROR


def test_unreachable_robots_txt_is_one_info_line() -> None:
    """A robots.txt whose host does not resolve or times out is logged as one INFO line
    without its traceback; any other error keeps its level and traceback."""
    from scrapy.exceptions import CannotResolveHostError, DownloadTimeoutError

    from pipeline.crawl.runner import UnreachableRobotsFilter

    def record(exc: Exception) -> logging.LogRecord:
        try:
            raise exc
        except type(exc):
            return logging.LogRecord(
                "scrapy.downloadermiddlewares.robotstxt",
                logging.ERROR,
                __file__,
                1,
                "Error downloading %(request)s: %(f_exception)s",
                None,
                sys.exc_info(),
            )

    for exc in (CannotResolveHostError("no results"), DownloadTimeoutError("took longer")):
        r = record(exc)
        assert UnreachableRobotsFilter().filter(r)
        assert (r.levelno, r.levelname, r.exc_info) == (logging.INFO, "INFO", None)
    other = record(ValueError("a bug"))
    assert UnreachableRobotsFilter().filter(other)
    assert other.levelno == logging.ERROR and other.exc_info is not None
