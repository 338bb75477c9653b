"""The append-only crawl archive (issue 10, must-show 4), with real crawls of a local web:
fetch-only settings fetch and delete nothing; keep settings re-judge the archive and fetch only
what it lacks, into new WARC files; a VERSION bump keeps every earlier file byte for byte."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import pipeline.crawl.driver as crawl_driver
from pipeline.core.config import CorpusConfig, CrawlConfig
from pipeline.core.io import read_table
from pipeline.crawl import run_part
from pipeline.crawl.warc import part_warcs, read_response
from tests.crawl_server import CrawlServer, Site, html
from tests.test_crawl import fast_cfg, fetch_rows, page_hits, write_links


def acfg(**kw: object) -> CrawlConfig:
    """The crawl tests' settings with a timeout that a loaded machine does not trip (the
    timeout is a fetch-only setting: it is not in the crawl's fingerprint)."""
    return fast_cfg(**{"download_timeout": 10.0, **kw})


HUGE = 300_000  # over fast_cfg's max_bytes (200,000)
BIG = 9_000


def archive_site() -> Site:
    s = Site(robots="User-agent: *\nDisallow: /private/\n")
    for i in range(6):
        s.static(f"/page{i}.html", html(f"page {i}", f"Words of page {i} about rivers. " * 40))
    s.static("/big.html", html("big", "A long page of text. " * (BIG // 21)))
    s.static("/huge.html", html("huge", "x" * HUGE))
    s.static("/doc.txt", b"Plain text notes about mountains and trade. " * 30, "text/plain")
    s.static("/file.pdf", b"%PDF-1.4 not really a pdf " * 40, "application/pdf")
    s.static("/private/x.html", html("private", "robots says no"))
    return s


PATHS = [
    *(f"/page{i}.html" for i in range(6)),
    "/big.html",
    "/huge.html",
    "/doc.txt",
    "/file.pdf",
    "/missing",
    "/private/x.html",
]


@pytest.fixture
def web():
    server = CrawlServer([archive_site()]).start()
    yield server
    server.stop()


def warc_state(root: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in part_warcs(root / "crawl" / "warc", "part-00000")
    }


def paths_hit(server: CrawlServer, since: Counter) -> set[str]:
    """Paths requested since `since` (robots.txt aside). A set: on a loaded machine a
    request may time out and be retried, which is the crawler's business, not the archive's."""
    return {path for _, path in page_hits(server, since)}


def outcome(rows: dict[str, dict], server: CrawlServer) -> dict[str, str | None]:
    return {urlsplit(u).path: r["error"] for u, r in rows.items()}


BASE_OUTCOME = {
    **{f"/page{i}.html": None for i in range(6)},
    "/big.html": None,
    "/huge.html": "too_large",
    "/doc.txt": "bad_content_type",
    "/file.pdf": "bad_content_type",
    "/missing": "http_4xx",
    "/private/x.html": "robots",
}


def first_crawl(server: CrawlServer, root: Path, **kw: object) -> Path:
    links = write_links(root / "links" / "part-00000.parquet", [server.url(0, p) for p in PATHS])
    run_part(links, root, acfg(**kw))
    assert outcome(fetch_rows(root), server) == BASE_OUTCOME
    return links


@pytest.mark.parametrize(
    "change",
    [
        {"concurrent_requests": 1, "concurrent_per_domain": 1},
        {"warc_gzip_level": 9},
        {
            "user_agent": "another-bot/2.0 (+https://example.invalid)",
            "download_timeout": 7.0,
            "retry_times": 0,
            "autothrottle": False,
            "download_delay": 0.5,
            "warc_max_bytes": 1000,
            "proxy": "http://127.0.0.1:9",  # would fail every request if one were made
        },
    ],
    ids=["concurrency", "gzip_level", "fetch_settings"],
)
def test_fetch_only_settings_fetch_and_delete_nothing(web, tmp_path, change):
    links = first_crawl(web, tmp_path)
    warcs, rows, n_requests = warc_state(tmp_path), fetch_rows(tmp_path), len(web.log)
    stats = run_part(links, tmp_path, acfg(**change))
    assert len(web.log) == n_requests  # not one request, robots.txt included
    assert stats.extra.get("skipped") is True
    assert warc_state(tmp_path) == warcs  # same file set, every byte the same
    assert fetch_rows(tmp_path) == rows


def test_content_types_and_size_cap_rejudge_the_archive(web, tmp_path):
    links = first_crawl(web, tmp_path)
    warc0 = warc_state(tmp_path)
    assert list(warc0) == ["part-00000-00000.warc.gz"]
    rows1 = fetch_rows(tmp_path)

    # text/plain allowed: only the page dropped for its type is fetched, into a new file.
    seen = Counter(web.hits)
    html_text = ["text/html", "application/xhtml+xml", "text/plain"]
    s2 = run_part(links, tmp_path, acfg(content_types=html_text))
    assert paths_hit(web, seen) == {"/doc.txt"}
    rows2 = fetch_rows(tmp_path)
    assert outcome(rows2, web) == {**BASE_OUTCOME, "/doc.txt": None}
    assert rows2[web.url(0, "/doc.txt")]["warc_file"] == "crawl/warc/part-00000-00001.warc.gz"
    state2 = warc_state(tmp_path)
    assert {k: state2[k] for k in warc0} == warc0 and len(state2) == 2
    assert (s2.extra["carried_over"], s2.extra["crawled_now"], s2.extra["rejudged"]) == (11, 1, 0)
    for u, r in rows1.items():
        if not u.endswith("/doc.txt"):
            assert rows2[u] == r, u

    # Only text/plain: the archived HTML pages become drops without a single request; their
    # rows keep the WARC pointers, the ledger says why.
    seen = Counter(web.hits)
    s3 = run_part(links, tmp_path, acfg(content_types=["text/plain"]))
    assert paths_hit(web, seen) == set()
    rows3 = fetch_rows(tmp_path)
    html_pages = [*(f"/page{i}.html" for i in range(6)), "/big.html"]
    assert outcome(rows3, web) == {
        **BASE_OUTCOME,
        **{p: "bad_content_type" for p in html_pages},
        "/doc.txt": None,
    }
    for p in html_pages:
        u = web.url(0, p)
        assert {k: v for k, v in rows3[u].items() if k != "error"} == {
            k: v for k, v in rows2[u].items() if k != "error"
        }
    ledger = {
        r["key"]: r for r in read_table(tmp_path / "ledger/crawl/part-00000.parquet").to_pylist()
    }
    assert ledger[web.url(0, "/page0.html")]["reason"] == "bad_content_type"
    assert ledger[web.url(0, "/page0.html")]["detail"] == "text/html"
    assert s3.dropped == Counter(bad_content_type=8, too_large=1, http_4xx=1, robots=1)
    assert s3.extra["rejudged"] == 7 and s3.n_out == 1
    assert warc_state(tmp_path) == state2

    # Back to HTML and text, and a size cap under /big.html: the archive decides both.
    seen = Counter(web.hits)
    run_part(links, tmp_path, acfg(content_types=html_text, max_bytes=BIG - 1000))
    assert paths_hit(web, seen) == set()
    rows4 = fetch_rows(tmp_path)
    assert outcome(rows4, web) == {**BASE_OUTCOME, "/doc.txt": None, "/big.html": "too_large"}
    assert warc_state(tmp_path) == state2

    # A larger cap: /big.html is kept again from the archive, /huge.html alone is fetched.
    seen = Counter(web.hits)
    run_part(links, tmp_path, acfg(content_types=html_text, max_bytes=2 * HUGE))
    assert paths_hit(web, seen) == {"/huge.html"}
    rows5 = fetch_rows(tmp_path)
    assert outcome(rows5, web) == {**BASE_OUTCOME, "/doc.txt": None, "/huge.html": None}
    for u, r in rows2.items():
        if not u.endswith("/huge.html"):
            assert rows5[u] == r, u  # every field, as the crawl that fetched it wrote it
    state5 = warc_state(tmp_path)
    assert {k: state5[k] for k in state2} == state2 and len(state5) == 3

    # Extraction reads every kept page from whichever of the three files holds it.
    from pipeline.extract import run_part as extract_part

    cfg = CorpusConfig.model_validate({"filter": {"min_tokens": 1}})
    fetches = tmp_path / "crawl/fetches/part-00000.parquet"
    stats = extract_part(links, fetches, tmp_path, cfg)
    docs = read_table(tmp_path / "docs/part-00000.parquet").column("url").to_pylist()
    drops = read_table(tmp_path / "ledger/extract/part-00000.parquet").column("key").to_pylist()
    kept = sorted(u for u, r in rows5.items() if r["error"] is None)
    assert stats.n_in == len(kept) == 9 and sorted(docs + drops) == kept
    assert len(docs) >= 8  # the HTML pages at least; no warc_error among the drops
    assert len({rows5[u]["warc_file"] for u in kept}) == 3
    for u in kept:
        r = rows5[u]
        uri, status, _, body = read_response(
            tmp_path / r["warc_file"], r["warc_offset"], r["warc_length"]
        )
        assert (uri, status, len(body)) == (u, 200, r["bytes"])


def test_version_bump_keeps_every_warc_file(web, tmp_path, monkeypatch):
    links = first_crawl(web, tmp_path)
    warcs, rows1 = warc_state(tmp_path), fetch_rows(tmp_path)
    monkeypatch.setattr(crawl_driver, "VERSION", crawl_driver.VERSION + 1)
    seen = Counter(web.hits)
    stats = run_part(links, tmp_path, acfg())
    # Pages the archive holds are not fetched; drops the old code judged are fetched again
    # (robots.txt still keeps /private/ from being requested).
    assert paths_hit(web, seen) == {"/huge.html", "/doc.txt", "/file.pdf", "/missing"}
    assert warc_state(tmp_path) == warcs
    rows2 = fetch_rows(tmp_path)
    for u in rows1:
        if rows1[u]["error"] is None:
            assert rows2[u] == rows1[u]
    assert outcome(rows2, web) == BASE_OUTCOME
    assert stats.extra["carried_over"] == 7 and stats.extra["crawled_now"] == 5

    # A new link under the new version: a new file, after the earlier one, which stays.
    write_links(links, [web.url(0, p) for p in PATHS] + [web.url(0, "/page9.html")])
    run_part(links, tmp_path, acfg())
    state = warc_state(tmp_path)
    assert {k: state[k] for k in warcs} == warcs
    assert sorted(state) == ["part-00000-00000.warc.gz"]  # a 404 archives nothing
    # A forced full crawl writes new files after every earlier one and deletes none.
    seen = Counter(web.hits)
    run_part(links, tmp_path, acfg(), force=True)
    state = warc_state(tmp_path)
    assert {k: state[k] for k in warcs} == warcs
    assert sorted(state) == ["part-00000-00000.warc.gz", "part-00000-00001.warc.gz"]
    everything = [p for p in PATHS if not p.startswith("/private/")] + ["/page9.html"]
    assert paths_hit(web, seen) == set(everything)
    kept = {u: r for u, r in fetch_rows(tmp_path).items() if r["error"] is None}
    assert {r["warc_file"] for r in kept.values()} == {"crawl/warc/part-00000-00001.warc.gz"}


def test_robots_off_fetches_only_the_robots_drops(web, tmp_path):
    links = first_crawl(web, tmp_path)
    warcs = warc_state(tmp_path)
    seen = Counter(web.hits)
    run_part(links, tmp_path, acfg(obey_robots=False))
    assert paths_hit(web, seen) == {"/private/x.html"}
    assert outcome(fetch_rows(tmp_path), web) == {**BASE_OUTCOME, "/private/x.html": None}
    state = warc_state(tmp_path)
    assert {k: state[k] for k in warcs} == warcs and len(state) == 2


def test_marker_of_an_older_release_fetches_nothing(web, tmp_path):
    """A done marker written before the crawl fingerprint left out fetch settings (another
    fingerprint, no kept_by): the upgrade re-judges from the archive and fetches nothing."""
    import json

    links = first_crawl(web, tmp_path)
    warcs, rows = warc_state(tmp_path), fetch_rows(tmp_path)
    mpath = tmp_path / "_done" / "crawl" / "part-00000.json"
    marker = json.loads(mpath.read_text())
    marker["config"] = "0123456789abcdef"
    del marker["stats"]["extra"]["kept_by"]
    mpath.write_text(json.dumps(marker))
    n_requests = len(web.log)
    stats = run_part(links, tmp_path, acfg())
    assert len(web.log) == n_requests
    assert stats.extra["carried_over"] == len(PATHS) and stats.extra["rejudged"] == 0
    assert fetch_rows(tmp_path) == rows and warc_state(tmp_path) == warcs
    assert json.loads(mpath.read_text())["stats"]["extra"]["kept_by"] == acfg().kept_by()


def test_bare_crawl_subprocess_appends_after_the_archive(web, tmp_path):
    """`python -m pipeline.crawl` started by hand (no --warc-start) on an archived part
    writes after the existing files instead of over them."""
    from pipeline.crawl import crawl_subprocess

    links = first_crawl(web, tmp_path)
    warcs = warc_state(tmp_path)
    proc = crawl_subprocess(links, tmp_path, "part-00000", acfg())
    assert proc.wait(timeout=300) == 0
    state = warc_state(tmp_path)
    assert {k: state[k] for k in warcs} == warcs
    assert sorted(state) == ["part-00000-00000.warc.gz", "part-00000-00001.warc.gz"]
