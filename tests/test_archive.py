"""Archive fallback for dead links, against local fake archives in the real formats.

The fake archives (demo/archives.py) speak the Wayback CDX API (JSON and text lines), Wayback
raw `id_` captures with their redirect to the exact timestamp, Common Crawl's collinfo.json and
CDX index (JSON lines), and byte ranges of WARC files made of gzip members (built with warcio,
and a real Common Crawl WARC excerpt from ../shared/data). The end-to-end test runs the real
crawl (Scrapy subprocess) against a local web whose dead links the archives hold.
"""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from demo.archives import FakeArchive, Snapshot, archive_config, serve_archive
from pipeline.core.config import CrawlConfig
from pipeline.core.io import read_table, rows_to_table, write_table
from pipeline.crawl import run_part
from pipeline.crawl.archive import (
    Capture,
    nearest,
    nearest_crawls,
    parse_cc_index,
    parse_cdx,
    recover,
)
from pipeline.crawl.fallback import is_dead
from pipeline.extract.warc import read_response
from schemas.records import CRAWL_ERRORS, FETCH_SCHEMA, LINKS_SCHEMA
from tests.crawl_server import CrawlServer, Resp, Site, html

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SCRAPINGHUB = DATA / "extraction" / "scrapinghub" / "html"
CC_EXCERPT = DATA / "warc" / "CC-MAIN-2020-34_excerpt.warc.gz"
RANKS = DATA / "tokenizer" / "r50k_base.tiktoken"
POSTED = datetime(2017, 6, 15, 12, 0, tzinfo=UTC)


def real_pages(n: int) -> list[bytes]:
    """The first n real article pages under 300 KB (the tests' crawl.max_bytes is 400 KB)."""
    pages = (gzip.decompress(f.read_bytes()) for f in sorted(SCRAPINGHUB.glob("*.html.gz")))
    return [p for p in pages if len(p) < 300_000][:n]


# ---------------------------------------------------------------------------------------------
# formats and choices


def test_parse_cdx_json_and_text_agree() -> None:
    as_json = json.dumps(
        [
            ["timestamp", "original", "statuscode", "mimetype", "length"],
            ["20170610083000", "http://a.test/x", "200", "text/html", "5120"],
            ["20160101000000", "http://a.test/x", "200", "application/pdf", "-"],
            ["2017", "http://a.test/x", "404", "text/html", "10"],  # not 200: skipped
        ]
    )
    as_text = (
        "20170610083000 http://a.test/x 200 text/html 5120\n"
        "20160101000000 http://a.test/x 200 application/pdf -\n"
        "2017 http://a.test/x 404 text/html 10\n"
        "garbage line\n"
    )
    want = [
        Capture("20170610083000", "http://a.test/x", "text/html", 5120),
        Capture("20160101000000", "http://a.test/x", "application/pdf", None),
    ]
    assert parse_cdx(as_json) == want
    assert parse_cdx(as_text) == want
    assert parse_cdx("[]") == [] and parse_cdx("") == []


def test_parse_cc_index_lines() -> None:
    lines = "\n".join(
        [
            json.dumps(
                {
                    "url": "http://a.test/x",
                    "timestamp": "20170620101010",
                    "status": "200",
                    "mime": "text/html",
                    "length": "900",
                    "offset": "1234",
                    "filename": "crawl-data/x.warc.gz",
                }
            ),
            json.dumps({"url": "http://a.test/x", "timestamp": "2017", "status": "301"}),
            "{not json",
        ]
    )
    got = parse_cc_index(lines, "CC-MAIN-2017-26")
    assert got == [
        Capture(
            "20170620101010",
            "http://a.test/x",
            "text/html",
            900,
            "crawl-data/x.warc.gz",
            1234,
            "CC-MAIN-2017-26",
        )
    ]


def test_nearest_capture_and_crawls() -> None:
    caps = [Capture(ts, "u") for ts in ("20160101000000", "20170601000000", "20170701000000")]
    # 2017-06-15 12:00 is 14.5 days after June 1st and 15.5 days before July 1st.
    assert next(c.timestamp for c in nearest(caps, POSTED)) == "20170601000000"
    assert nearest(caps, None)[0].timestamp == "20160101000000"
    crawls = [
        {"id": "CC-MAIN-2017-51", "cdx-api": "x51"},
        {"id": "CC-MAIN-2017-26", "cdx-api": "x26"},
        {"id": "CC-MAIN-2016-07", "cdx-api": "x07"},
        {"id": "no-date", "cdx-api": "y"},
        {
            "id": "CC-MAIN-2017-30",
            "from": "2017-07-20T00:00:00",
            "to": "2017-07-28T00:00:00",
            "cdx-api": "x30",
        },
    ]
    assert [c["cdx-api"] for c in nearest_crawls(crawls, POSTED, 2)] == ["x26", "x30"]


def test_dead_link_rules() -> None:
    errors = CrawlConfig().archive.errors
    assert errors == ["connection_refused", "dns", "http_404", "http_410", "parked", "soft_404"]
    assert is_dead({"error": "http_4xx", "status": 404}, errors)
    assert is_dead({"error": "http_4xx", "status": 410}, errors)
    assert not is_dead({"error": "http_4xx", "status": 403}, errors)
    assert not is_dead({"error": "http_5xx", "status": 503}, errors)
    assert not is_dead({"error": "timeout", "status": None}, errors)
    assert is_dead(
        {"error": "connection", "detail": "Connection was refused by other side"}, errors
    )
    assert not is_dead({"error": "connection", "detail": "Connection lost"}, errors)
    assert is_dead({"error": "soft_404", "status": 200}, errors)
    assert not is_dead({"error": None, "status": 200}, errors)
    with pytest.raises(ValueError, match="unknown dead-link errors"):
        CrawlConfig(archive={"errors": ["http_4xx", "nonsense"]})


# ---------------------------------------------------------------------------------------------
# recover(): one link at a time


def cfg_for(base: str, sources: list[str], **archive: object) -> CrawlConfig:
    return CrawlConfig(
        allow_hosts=["127.0.0.1"],
        max_bytes=400_000,
        max_retry_after=0.2,
        archive={
            "sources": sources,
            "rate_wayback": 200.0,
            "rate_commoncrawl": 200.0,
            "retries": 2,
            "backoff": 0.01,
            "timeout": 5.0,
            **archive_config(base),
            **archive,
        },
    )


def warc_record(root: Path, row: dict) -> tuple[dict[str, str], bytes]:
    with open(root / row["warc_file"], "rb") as f:
        f.seek(row["warc_offset"])
        data = f.read(row["warc_length"])
    rec = next(iter(ArchiveIterator(io.BytesIO(data))))
    return dict(rec.rec_headers.headers), rec.content_stream().read()


@pytest.mark.parametrize("output", ["json", "text"])
def test_wayback_nearest_capture_to_post_date(tmp_path: Path, output: str) -> None:
    pages = real_pages(3)
    url = "http://news.example.test/2017/06/story"
    fake = FakeArchive()
    for ts, body in zip(("20160302101500", "20170610083000", "20190105120000"), pages):
        fake.add_wayback(url, Snapshot(ts, body))
    with serve_archive(fake) as base:
        cfg = cfg_for(base, ["wayback"], wayback_output=output)
        got = recover(tmp_path, "part-00000", [(url, POSTED)], cfg)
        later = recover(tmp_path, "part-00000", [(url, datetime(2018, 11, 1, tzinfo=UTC))], cfg)
    row = got[url]
    assert row["error"] is None and row["source"] == "wayback"
    assert row["captured_at"] == int(datetime(2017, 6, 10, 8, 30, tzinfo=UTC).timestamp() * 1000)
    headers, body = warc_record(tmp_path, row)
    assert body == pages[1]
    assert headers["WARC-Date"] == "2017-06-10T08:30:00Z"
    assert headers["WARC-Target-URI"] == url
    assert headers["WebText-Source"] == "wayback"
    assert headers["WARC-Source-URI"] == f"{base}/web/20170610083000id_/{url}"
    # Extraction reads the record like any crawled page.
    resp = read_response(tmp_path / row["warc_file"], row["warc_offset"], row["warc_length"])
    assert resp.body == pages[1] and resp.status == 200
    # Another post date, another capture; a second step writes a new WARC file.
    assert warc_record(tmp_path, later[url])[1] == pages[2]
    assert later[url]["warc_file"] != row["warc_file"]
    # The CDX query asked for exactly what the API documents.
    cdx = next(r for r in fake.requests if r.startswith("/cdx/"))
    for part in (
        "fl=timestamp%2Coriginal%2Cstatuscode%2Cmimetype%2Clength",
        "filter=statuscode%3A200",
        f"output={output}",
        "closest=20170615120000",
        "sort=closest",
    ):
        assert part in cdx


def test_wayback_raw_redirect_to_exact_capture(tmp_path: Path) -> None:
    """Wayback answers a raw request for another timestamp with a redirect to the capture it
    holds; the capture time is the one it names (Memento-Datetime), not the one asked for."""
    page = real_pages(1)[0]
    url = "http://news.example.test/moved"
    fake = FakeArchive()
    fake.add_wayback(url, Snapshot("20170611000000", page))
    with serve_archive(fake) as base:
        # A raw endpoint that ignores the CDX timestamp: always asks for 2017-01-01.
        cfg = cfg_for(base, ["wayback"], wayback_raw=base + "/web/20170101000000id_/{url}")
        row = recover(tmp_path, "part-00000", [(url, POSTED)], cfg)[url]
    assert row["error"] is None
    assert row["captured_at"] == int(datetime(2017, 6, 11, tzinfo=UTC).timestamp() * 1000)
    raws = [r for r in fake.requests if r.startswith("/web/")]
    assert raws == [f"/web/20170101000000id_/{url}", f"/web/20170611000000id_/{url}"]
    assert warc_record(tmp_path, row)[0]["WARC-Source-URI"] == f"{base}{raws[1]}"


def test_commoncrawl_nearest_crawl_and_range(tmp_path: Path) -> None:
    pages = real_pages(3)
    url = "http://blog.example.test/post"
    fake = FakeArchive()
    fake.add_crawl("CC-MAIN-2016-50", "2016-12-02T00:00:00", "2016-12-12T00:00:00")
    fake.add_crawl("CC-MAIN-2017-26", "2017-06-22T00:00:00", "2017-06-30T00:00:00")
    fake.add_crawl("CC-MAIN-2018-05", "2018-01-16T00:00:00", "2018-01-24T00:00:00")
    fake.add_cc("CC-MAIN-2016-50", url, "20161205101010", pages[0])
    fake.add_cc("CC-MAIN-2017-26", url, "20170625101010", pages[1])
    fake.add_cc("CC-MAIN-2018-05", url, "20180120101010", pages[2])
    with serve_archive(fake) as base:
        cfg = cfg_for(base, ["commoncrawl"], commoncrawl_crawls=3)
        row = recover(tmp_path, "part-00000", [(url, POSTED)], cfg)[url]
    assert row["error"] is None and row["source"] == "commoncrawl"
    headers, body = warc_record(tmp_path, row)
    assert body == pages[1]
    assert headers["WARC-Date"] == "2017-06-25T10:10:10Z"
    assert headers["WebText-Source"] == "commoncrawl"
    assert headers["WARC-Source-URI"].startswith(f"{base}/data/crawl-data/CC-MAIN-2017-26/")
    # One collinfo, three index lookups, one byte range.
    assert sum(r == "/collinfo.json" for r in fake.requests) == 1
    assert sum(r.endswith("-index") or "-index?" in r for r in fake.requests) == 3
    assert sum(r.startswith("/data/") for r in fake.requests) == 1


def test_commoncrawl_real_warc_excerpt(tmp_path: Path) -> None:
    """Byte ranges of a real Common Crawl WARC file: every HTML response comes back whole."""
    fake = FakeArchive()
    fake.add_crawl("CC-MAIN-2020-34", "2020-08-03T00:00:00", "2020-08-16T00:00:00")
    entries = fake.add_cc_warc_file(
        "CC-MAIN-2020-34", "crawl-data/CC-MAIN-2020-34/excerpt.warc.gz", CC_EXCERPT.read_bytes()
    )
    html_entries = [e for e in entries if e.mime == "text/html" and e.status == 200]
    assert len(html_entries) >= 5
    payloads = {}
    with open(CC_EXCERPT, "rb") as f:
        for rec in ArchiveIterator(f):
            if rec.rec_type == "response":
                payloads[rec.rec_headers.get_header("WARC-Target-URI")] = (
                    rec.content_stream().read()
                )
    links = [(e.url, datetime(2020, 8, 10, tzinfo=UTC)) for e in html_entries]
    with serve_archive(fake) as base:
        cfg = cfg_for(base, ["commoncrawl"], commoncrawl_crawls=1)
        cfg = cfg.model_copy(update={"max_bytes": 5_000_000})
        got = recover(tmp_path, "part-00000", links, cfg)
    for e in html_entries:
        row = got[e.url]
        assert row["error"] is None, (e.url, row)
        assert warc_record(tmp_path, row)[1] == payloads[e.url]


# ---------------------------------------------------------------------------------------------
# the real crawl, end to end: dead links, their archived copies, and every way it can fail


def write_links(path: Path, urls: list[str], first_seen: datetime) -> Path:
    rows = [
        {
            "url": u,
            "domain": "127.0.0.1",
            "host": "127.0.0.1",
            "karma": 5,
            "karma_max": 5,
            "karma_sum": 5,
            "n_posts": 1,
            "post_ids": [],
            "subreddits": ["news"],
            "first_seen": first_seen,
            "title": "",
        }
        for u in urls
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(path, rows_to_table(rows, LINKS_SCHEMA))
    return path


SOFT_404 = html("Page not found | Example News", "Sorry, we could not find that page.")
PARKED = (
    b"<html><head><title>example.test is for sale</title></head><body>"
    b"<h1>This domain is for sale!</h1><p>Buy this domain today.</p></body></html>"
)


def dead_site() -> Site:
    s = Site(robots="User-agent: *\nDisallow:\n")
    s.static("/alive", real_pages(5)[4], "text/html; charset=utf-8")
    s.static("/soft", SOFT_404, "text/html")
    s.static("/parked", PARKED, "text/html")
    for path in (
        "/gone-wb",
        "/gone-cc",
        "/busy",
        "/flaky",
        "/trunc",
        "/huge",
        "/pdf",
        "/evil",
        "/nowhere",
    ):
        s.route(path, _status(404))
    s.route("/gone-410", _status(410))
    s.route("/server-error", _status(500))
    return s


def _status(code: int):
    async def h(req, w):
        return Resp(code, b"<html>error</html>", [("Content-Type", "text/html")])

    return h


@pytest.fixture(scope="module")
def dead_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive-e2e")
    pages = real_pages(4)
    trap = CrawlServer([Site()], host="127.0.0.2").start()  # a forbidden address
    live = CrawlServer([dead_site()]).start()
    fake = FakeArchive()
    u = lambda p: live.url(0, p)
    # Wayback: three captures of /gone-wb; one of the soft 404; one of /flaky (after a 503).
    for ts, body in zip(("20150101000000", "20170614000000", "20200101000000"), pages):
        fake.add_wayback(u("/gone-wb"), Snapshot(ts, body))
    fake.add_wayback(u("/soft"), Snapshot("20170701000000", pages[3]))
    fake.add_wayback(u("/flaky"), Snapshot("20170601000000", pages[2]))
    fake.faults[("cdx", u("/flaky"))] = [(503, "0")]
    fake.faults[("cdx", u("/busy"))] = [(429, "0")] * 10  # every try
    fake.add_wayback(u("/pdf"), Snapshot("20170601000000", b"%PDF-1.4 ...", "application/pdf"))
    fake.add_wayback(u("/evil"), Snapshot("20170601000000", pages[0]))
    fake.raw_redirect[u("/evil")] = f"http://127.0.0.2:{trap.ports[0]}/admin"
    # Common Crawl: /gone-cc (and /gone-410) in two crawls, a truncated range, a huge record.
    fake.add_crawl("CC-MAIN-2017-22", "2017-05-22T00:00:00", "2017-05-30T00:00:00")
    fake.add_crawl("CC-MAIN-2017-26", "2017-06-20T00:00:00", "2017-06-28T00:00:00")
    fake.add_cc("CC-MAIN-2017-22", u("/gone-cc"), "20170525000000", pages[0])
    fake.add_cc("CC-MAIN-2017-26", u("/gone-cc"), "20170622000000", pages[1])
    fake.add_cc("CC-MAIN-2017-26", u("/gone-410"), "20170623000000", pages[2])
    fake.add_cc("CC-MAIN-2017-26", u("/trunc"), "20170623000000", pages[3])
    fake.truncate.add(u("/trunc"))
    fake.add_cc("CC-MAIN-2017-26", u("/huge"), "20170623000000", b"<html>" + b"x" * 500_000)
    paths = [
        "/alive",
        "/soft",
        "/parked",
        "/gone-wb",
        "/gone-cc",
        "/gone-410",
        "/busy",
        "/flaky",
        "/trunc",
        "/huge",
        "/pdf",
        "/evil",
        "/nowhere",
        "/server-error",
    ]
    links = write_links(root / "links" / "part-00000.parquet", [u(p) for p in paths], POSTED)
    try:
        with serve_archive(fake) as base:
            cfg = cfg_for(base, ["wayback", "commoncrawl"])
            cfg = cfg.model_copy(
                update={"download_timeout": 2.0, "retry_times": 0, "autothrottle": False}
            )
            stats = run_part(links, root, cfg)
        yield root, stats, u, fake, trap
    finally:
        live.stop()
        trap.stop()


# path -> (error, source, live_error)
EXPECTED = {
    "/alive": (None, "live", None),
    "/soft": (None, "wayback", "soft_404"),
    "/parked": ("archive_miss", "live", "parked"),
    "/gone-wb": (None, "wayback", "http_4xx"),
    "/gone-cc": (None, "commoncrawl", "http_4xx"),
    "/gone-410": (None, "commoncrawl", "http_4xx"),
    "/busy": ("archive_unavailable", "live", "http_4xx"),
    "/flaky": (None, "wayback", "http_4xx"),
    "/trunc": ("archive_bad_record", "live", "http_4xx"),
    "/huge": ("archive_too_large", "live", "http_4xx"),
    "/pdf": ("archive_bad_content_type", "live", "http_4xx"),
    "/evil": ("archive_blocked_address", "live", "http_4xx"),
    "/nowhere": ("archive_miss", "live", "http_4xx"),
    "/server-error": ("http_5xx", "live", None),  # not a permanent failure: no archive asked
}


def test_fetch_log_sources_and_reasons(dead_run) -> None:
    root, stats, u, _fake, _trap = dead_run
    table = read_table(root / "crawl" / "fetches" / "part-00000.parquet")
    assert table.schema.equals(FETCH_SCHEMA)
    rows = {r["url"]: r for r in table.to_pylist()}
    got = {
        p: (rows[u(p)]["error"], rows[u(p)]["source"], rows[u(p)]["live_error"]) for p in EXPECTED
    }
    assert got == EXPECTED
    assert all(r["error"] is None or r["error"] in CRAWL_ERRORS for r in rows.values())
    ms = lambda *a: datetime(*a, tzinfo=UTC)
    assert rows[u("/gone-wb")]["captured_at"] == ms(2017, 6, 14)  # nearest of three
    assert rows[u("/gone-cc")]["captured_at"] == ms(2017, 6, 22)  # nearest crawl
    assert rows[u("/soft")]["captured_at"] == ms(2017, 7, 1)
    alive = rows[u("/alive")]
    assert alive["captured_at"] == alive["fetched_at"].replace(microsecond=0)
    # Counts add up: one ledger row per dropped link, with its reason.
    ledger = read_table(root / "ledger" / "crawl" / "part-00000.parquet").to_pylist()
    want = Counter(e for e, _s, _l in EXPECTED.values() if e is not None)
    assert Counter(r["reason"] for r in ledger) == want == stats.dropped
    assert stats.n_out == 6 and stats.n_in == len(EXPECTED)
    stats.check()
    detail = {r["key"]: r["detail"] for r in ledger}
    assert detail[u("/busy")] == (
        "dead (http_4xx: status 404); wayback: status 429 after 3 tries; commoncrawl: no capture"
    )
    assert "truncated range" in detail[u("/trunc")]
    assert detail[u("/parked")].startswith("dead (parked: ")
    assert stats.extra["by_source"] == {"commoncrawl": 2, "live": 1, "wayback": 3}
    assert stats.extra["archive_recovered"] == {"commoncrawl": 2, "wayback": 3}
    assert stats.extra["dead_links"] == {"http_4xx": 10, "parked": 1, "soft_404": 1}


def test_archived_records_read_like_pages(dead_run) -> None:
    root, _stats, u, _fake, _trap = dead_run
    pages = real_pages(4)
    rows = {
        r["url"]: r
        for r in read_table(root / "crawl" / "fetches" / "part-00000.parquet").to_pylist()
    }
    for path, body in (("/gone-wb", pages[1]), ("/gone-cc", pages[1]), ("/soft", pages[3])):
        r = rows[u(path)]
        resp = read_response(root / r["warc_file"], r["warc_offset"], r["warc_length"])
        assert resp.body == body and resp.target_uri == u(path)
    # The archive's records went into a new WARC file after the live crawl's.
    files = sorted({r["warc_file"] for r in rows.values() if r["warc_file"]})
    assert files == ["crawl/warc/part-00000-00000.warc.gz", "crawl/warc/part-00000-00001.warc.gz"]
    assert rows[u("/alive")]["warc_file"] == files[0]


def test_politeness_and_guard(dead_run) -> None:
    _root, _stats, _u, fake, trap = dead_run
    # Nothing ever reached the forbidden address, not even through the archive's redirect.
    assert trap.log == []
    # 429 on every try: 1 + retries CDX requests, then Common Crawl was asked.
    busy = [r for r in fake.requests if r.startswith("/cdx/") and "busy" in r]
    assert len(busy) == 3
    flaky = [r for r in fake.requests if r.startswith("/cdx/") and "flaky" in r]
    assert len(flaky) == 2  # 503 once, then the answer
    # No archive was asked about a link that is not dead.
    assert not any("server-error" in r for r in fake.requests)
    assert not any("alive" in r for r in fake.requests)


def test_extract_carries_source_and_capture_time(dead_run) -> None:
    from pipeline.core.config import CorpusConfig
    from pipeline.extract import run_part as extract_part

    root, _stats, u, _fake, _trap = dead_run
    cfg = CorpusConfig.model_validate({"tokenizer": {"ranks_file": str(RANKS)}})
    st = extract_part(
        root / "links" / "part-00000.parquet",
        root / "crawl" / "fetches" / "part-00000.parquet",
        root,
        cfg,
    )
    docs = {d["url"]: d for d in read_table(root / "docs" / "part-00000.parquet").to_pylist()}
    assert docs[u("/gone-wb")]["source"] == "wayback"
    assert docs[u("/gone-wb")]["captured_at"] == datetime(2017, 6, 14, tzinfo=UTC)
    assert docs[u("/gone-cc")]["source"] == "commoncrawl"
    assert docs[u("/alive")]["source"] == "live"
    assert docs[u("/alive")]["captured_at"] is None  # the fetch time would differ per build
    assert st.extra["by_source"] == dict(
        sorted(Counter(d["source"] for d in docs.values()).items())
    )
    assert st.n_in == 6


def test_rate_per_archive_is_shared_by_parts(tmp_path: Path) -> None:
    """Two parts looking up at once (threads of one build) keep to one rate per archive."""
    import threading

    fake = FakeArchive()
    links = [(f"http://gone.example.test/{i}", POSTED) for i in range(4)]
    with serve_archive(fake) as base:
        cfg = cfg_for(base, ["wayback"], rate_wayback=5.0)
        parts = [
            threading.Thread(target=recover, args=(tmp_path, f"part-0000{n}", links, cfg))
            for n in range(2)
        ]
        for t in parts:
            t.start()
        for t in parts:
            t.join()
    assert len(fake.times) == 8  # one CDX lookup per link and part, all misses
    # 5 requests/s at most. The server stamps arrival, and a busy machine can hold one
    # request back so that it lands close to the next: judge spans of 4 requests (0.6 s at
    # the rate; one shared clock per archive), where one late arrival costs at most its delay.
    # Two parts each keeping 5/s on their own would give spans near 0.2-0.4 s.
    times = sorted(fake.times)
    spans = [b - a for a, b in zip(times, times[3:])]
    assert min(spans) >= 0.6 - 0.1, spans
    assert times[-1] - times[0] >= 7 * 0.2 - 0.05, times


def test_guard_refuses_archive_urls_on_forbidden_addresses(tmp_path: Path) -> None:
    """An index that names a WARC file by absolute URL, a collinfo whose CDX server is on a
    forbidden address, a Wayback redirect there: each one ledger reason, no request there."""
    trap = CrawlServer([Site()], host="127.0.0.2").start()
    trap_url = f"http://127.0.0.2:{trap.ports[0]}"
    page = real_pages(1)[0]
    a, b, c = (f"http://gone.example.test/{x}" for x in "abc")
    try:
        fake = FakeArchive()
        fake.add_crawl("CC-MAIN-2017-26", "2017-06-20T00:00:00", "2017-06-28T00:00:00")
        fake.add_cc("CC-MAIN-2017-26", a, "20170622000000", page)
        fake.cc_rows[a] = {"filename": f"{trap_url}/crawl-data/x.warc.gz"}
        other = FakeArchive()
        other.add_crawl("CC-MAIN-2017-25", "2017-06-15T00:00:00", "2017-06-19T00:00:00")
        other.cdx_api["CC-MAIN-2017-25"] = f"{trap_url}/CC-MAIN-2017-25-index"
        fake.add_wayback(c, Snapshot("20170601000000", page))
        fake.raw_redirect[c] = f"{trap_url}/admin"
        with serve_archive(fake) as base, serve_archive(other) as other_base:
            cfg = cfg_for(base, ["commoncrawl"], commoncrawl_crawls=1)
            got_a = recover(tmp_path, "part-00000", [(a, POSTED)], cfg)[a]
            cfg_b = cfg_for(other_base, ["commoncrawl"], commoncrawl_crawls=1)
            got_b = recover(tmp_path, "part-00000", [(b, POSTED)], cfg_b)[b]
            got_c = recover(tmp_path, "part-00000", [(c, POSTED)], cfg_for(base, ["wayback"]))[c]
    finally:
        trap.stop()
    assert got_a["error"] == "archive_bad_record" and "not relative" in got_a["detail"]
    assert got_b["error"] == "archive_blocked_address"
    assert got_b["detail"] == "commoncrawl: 127.0.0.2"
    assert got_c["error"] == "archive_blocked_address"
    assert trap.log == []


def test_next_month_keeps_recovered_pages_without_asking_again(dead_run, tmp_path) -> None:
    """A links part that gains a URL carries its archived rows over (same WARC record,
    source, capture time): the archives, stopped by now, are not asked again."""
    import shutil

    root, _stats, u, fake, _trap = dead_run
    copy = tmp_path / "build"
    shutil.copytree(root, copy)
    before = {
        r["url"]: r for r in read_table(copy / "crawl/fetches/part-00000.parquet").to_pylist()
    }
    n_requests = len(fake.requests)
    links = write_links(
        copy / "links" / "part-00000.parquet", [*sorted(before), u("/alive?page=2")], POSTED
    )
    cfg = cfg_for("http://127.0.0.1:9", ["wayback", "commoncrawl"])  # nothing listens there
    cfg = cfg.model_copy(update={"download_timeout": 2.0, "retry_times": 0, "autothrottle": False})
    stats = run_part(links, copy, cfg)
    after = {r["url"]: r for r in read_table(copy / "crawl/fetches/part-00000.parquet").to_pylist()}
    # The 500 and the link no archive could answer for (429 every time) are fetched again
    # (crawl.recrawl_errors: http_5xx, archive_unavailable), as is the new URL; the rest carried.
    again = {url for url, row in before.items() if row["error"] == "archive_unavailable"}
    assert len(again) == 1
    again.add(u("/server-error"))
    assert stats.extra["carried_over"] == len(before) - 2 and stats.extra["crawled_now"] == 3
    for url, row in before.items():
        if url not in again:
            assert after[url] == row, url
    assert after[u("/alive?page=2")]["source"] == "live"
    assert len(fake.requests) == n_requests
