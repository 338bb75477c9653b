"""The crawl stage against a hostile local web (tests/crawl_server.py): exact fetch-log rows,
the SSRF guard, the WARC archive, the proxy, and resume after SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from warcio.archiveiterator import ArchiveIterator

from pipeline.core.config import CrawlConfig
from pipeline.core.io import read_table, rows_to_table, write_table
from pipeline.crawl import crawl_subprocess, fetches_path, run_part
from pipeline.crawl.journal import journal_path
from pipeline.crawl.warc import part_warcs, read_response
from schemas.records import CRAWL_ERRORS, FETCH_SCHEMA, LEDGER_SCHEMA, LINKS_SCHEMA, LinkRecord
from tests.crawl_server import CrawlServer, Site, bench_site, hostile_site, html, plain_site

WARCIO = Path(sys.executable).parent / "warcio"


def fast_cfg(**kw: object) -> CrawlConfig:
    base: dict[str, object] = {
        "download_timeout": 1.0,
        "retry_times": 1,
        "max_retry_after": 1.0,
        "max_redirects": 3,
        "max_bytes": 200_000,
        "autothrottle_start_delay": 0.0,
        "concurrent_per_domain": 4,
        "allow_hosts": ["127.0.0.1"],
        "dns_timeout": 2.0,
    }
    base.update(kw)
    return CrawlConfig(**base)


def write_links(path: Path, urls: list[str]) -> Path:
    rows = []
    for u in urls:
        host = urlsplit(u).hostname or ""
        rows.append(asdict(LinkRecord(u, host, host, 3, 3, 3, 1)))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(path, rows_to_table(rows, LINKS_SCHEMA))
    return path


def wait_for_journal(jpath: Path, n_lines: int, timeout: float = 60) -> bool:
    """Wait until the crawl's journal holds more than n_lines lines (header included); False
    if it did not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (jpath.is_file() and jpath.read_bytes().count(b"\n") > n_lines):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def fetch_rows(root: Path, part: str = "part-00000") -> dict[str, dict]:
    table = read_table(fetches_path(root, part))
    assert table.schema.equals(FETCH_SCHEMA)
    rows = table.to_pylist()
    urls = [r["url"] for r in rows]
    assert urls == sorted(urls)
    return {r["url"]: r for r in rows}


def warc_responses(root: Path, part: str = "part-00000") -> list[tuple[str, str]]:
    out = []
    for p in part_warcs(root / "crawl" / "warc", part):
        with open(p, "rb") as f:
            for rec in ArchiveIterator(f):
                if rec.rec_type == "response":
                    out.append((p.name, rec.rec_headers.get_header("WARC-Target-URI")))
    return out


def slow_bench_site(pages: int, delay: float = 0.03) -> Site:
    """Benchmark pages that take `delay` s each: a crawl lasts long enough to be killed."""
    s = bench_site(pages)
    inner = s.prefixes[0][1]

    async def page(req, w):
        await asyncio.sleep(delay)
        return await inner(req, w)

    s.prefixes = [("/a/", page)]
    return s


@pytest.fixture(scope="module")
def web():
    server = CrawlServer(
        [hostile_site(), plain_site(2), plain_site(1, "User-agent: *\nDisallow: /\n")]
    ).start()
    yield server
    server.stop()


# (path on the hostile site, status, content_type, error, final path or None)
HOSTILE = [
    ("/ok.html", 200, "text/html", None, "/ok.html"),
    ("/private/secret.html", None, None, "robots", "/private/secret.html"),
    ("/missing", 404, "text/html", "http_4xx", "/missing"),
    ("/gone", 410, "text/html", "http_4xx", "/gone"),
    ("/flaky", 200, "text/html", None, "/flaky"),  # 500, then 200 on the retry
    ("/busy", 200, "text/html", None, "/busy"),  # 429 Retry-After: 1, then 200
    ("/always-busy", 429, "text/html", "http_4xx", "/always-busy"),  # Retry-After 3600 capped
    ("/always-500", 500, "text/html", "http_5xx", "/always-500"),
    ("/r/1", 200, "text/html", None, "/ok2.html"),  # 301 -> 302 -> 307 -> 200
    ("/long/1", None, None, "too_many_redirects", "/long/4"),
    ("/loop/a", None, None, "redirect_loop", "/loop/b"),
    ("/no-location", 302, None, "http_3xx", "/no-location"),
    ("/slow", None, None, "timeout", "/slow"),
    ("/big", None, None, "too_large", "/big"),  # Content-Length over the cap
    ("/big-chunked", None, None, "too_large", "/big-chunked"),  # no length, cut while reading
    ("/bomb", None, None, "too_large", "/bomb"),  # 64 KB of gzip -> 64 MB
    ("/gzip.html", 200, "text/html", None, "/gzip.html"),
    ("/gzip-members.html", 200, "text/html", None, "/gzip-members.html"),
    ("/doc.pdf", 200, "application/pdf", "bad_content_type", "/doc.pdf"),
    ("/notes.txt", 200, "text/plain", "bad_content_type", "/notes.txt"),
    ("/page.xhtml", 200, "application/xhtml+xml", None, "/page.xhtml"),
    ("/cp1251.html", 200, "text/html", None, "/cp1251.html"),
    ("/sjis.html", 200, "text/html", None, "/sjis.html"),
    ("/malformed.html", 200, "text/html", None, "/malformed.html"),
    ("/reset", None, None, "connection", "/reset"),
    ("/garbage", None, None, "connection", "/garbage"),  # not HTTP at all
    ("/bad-gzip", None, None, "bad_encoding", "/bad-gzip"),  # Content-Encoding: gzip, plain body
    ("/empty", 200, "text/html", "empty_body", "/empty"),
    ("/to-metadata", None, None, "blocked_address", "http://169.254.169.254/latest/meta-data/"),
    ("/to-localhost", None, None, "blocked_address", "http://localhost:{port}/secret-admin"),
]


@pytest.fixture(scope="module")
def hostile_run(web, tmp_path_factory):
    site: Site = web.sites[0]
    from tests.crawl_server import redirect

    site.route("/to-metadata", redirect("http://169.254.169.254/latest/meta-data/"))
    site.route("/to-localhost", redirect(f"http://localhost:{web.ports[0]}/secret-admin"))
    with socket_free_port() as closed_port:
        pass
    extra = {
        web.url(1, "/page0.html"): (200, "text/html", None),
        web.url(2, "/page0.html"): (None, None, "robots"),  # robots.txt: Disallow: /
        f"http://127.0.0.1:{closed_port}/x": (None, None, "connection"),
        "http://no-such-host.invalid/x": (None, None, "dns"),
        "mailto:someone@example.com": (None, None, "invalid_url"),
        f"http://localhost:{web.ports[0]}/secret-admin": (None, None, "blocked_address"),
        "http://10.1.2.3/admin": (None, None, "blocked_address"),
    }
    root = tmp_path_factory.mktemp("hostile")
    urls = [web.url(0, p) for p, *_ in HOSTILE] + list(extra)
    links = write_links(root / "links" / "part-00000.parquet", urls)
    t0 = time.monotonic()
    stats = run_part(links, root, fast_cfg())
    return root, stats, extra, time.monotonic() - t0


class socket_free_port:
    """A port nobody listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return self.s.getsockname()[1]

    def __exit__(self, *a: object) -> None:
        self.s.close()


def test_hostile_rows(web, hostile_run):
    root, _stats, extra, seconds = hostile_run
    rows = fetch_rows(root)
    assert len(rows) == len(HOSTILE) + len(extra)
    port = web.ports[0]
    for path, status, ctype, error, final in HOSTILE:
        r = rows[web.url(0, path)]
        got = (r["status"], r["content_type"], r["error"])
        assert got == (status, ctype, error), (path, got)
        want_final = final.format(port=port) if final.startswith("http") else web.url(0, final)
        assert r["final_url"] == want_final, path
        assert (r["warc_file"] is not None) == (error is None), path
        assert r["error"] is None or r["error"] in CRAWL_ERRORS
    for url, (status, ctype, error) in extra.items():
        r = rows[url]
        assert (r["status"], r["content_type"], r["error"]) == (status, ctype, error), url
    # robots.txt was asked once per site and cached; every request said who we are.
    assert [web.fetched(i, "/robots.txt") for i in range(3)] == [1, 1, 1]
    assert web.user_agents == {fast_cfg().user_agent}
    assert "+https://" in fast_cfg().user_agent
    # Things that must never reach the server.
    assert web.fetched(0, "/private/secret.html") == 0
    assert web.fetched(2, "/page0.html") == 0
    assert web.fetched(0, "/secret-admin") == 0
    # Retries: 500-then-200 and 429-then-200 each took exactly two requests.
    assert web.fetched(0, "/flaky") == 2 and web.fetched(0, "/busy") == 2
    assert rows[web.url(0, "/busy")]["elapsed_ms"] >= 950  # waited for Retry-After: 1
    # Retry-After: 3600 was capped at max_retry_after (1 s): the whole crawl is short.
    assert rows[web.url(0, "/always-busy")]["elapsed_ms"] < 3000
    assert seconds < 60
    # Refusals never touched the network: no timestamp, no elapsed time.
    for path in ("/private/secret.html",):
        assert rows[web.url(0, path)]["fetched_at"] is None
    assert rows[web.url(0, "/gzip.html")]["bytes"] == len(
        html("gzipped", "Compressed on the wire. " * 20)
    )


def test_hostile_stats_and_ledger(web, hostile_run):
    root, stats, _extra, _ = hostile_run
    rows = fetch_rows(root)
    errors = Counter(r["error"] for r in rows.values() if r["error"] is not None)
    assert stats.n_in == len(rows)
    assert stats.n_out == sum(1 for r in rows.values() if r["error"] is None) == 11
    assert stats.dropped == errors
    stats.check()
    ledger = read_table(root / "ledger" / "crawl" / "part-00000.parquet")
    assert ledger.schema.equals(LEDGER_SCHEMA)
    assert Counter(ledger.column("reason").to_pylist()) == errors
    keyed = {r["key"]: r for r in ledger.to_pylist()}
    assert keyed[web.url(0, "/missing")]["detail"] == "status 404"
    assert set(stats.outputs) == {
        "crawl/fetches/part-00000.parquet",
        "ledger/crawl/part-00000.parquet",
        "crawl/warc/part-00000-00000.warc.gz",
    }
    assert (root / "_done" / "crawl" / "part-00000.json").is_file()
    assert not (root / "crawl" / "_work" / "part-00000").exists()


def test_hostile_warc(web, hostile_run):
    root, *_ = hostile_run
    rows = fetch_rows(root)
    warc = root / "crawl" / "warc" / "part-00000-00000.warc.gz"
    check = subprocess.run(
        [str(WARCIO), "check", "-v", str(warc)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    kinds = Counter()
    with open(warc, "rb") as f:
        for rec in ArchiveIterator(f):
            kinds[rec.rec_type] += 1
            if rec.rec_type in ("request", "response"):
                assert rec.rec_headers.get_header("WARC-Target-URI")
                assert rec.rec_headers.get_header("WARC-Date")
            if rec.rec_type == "response":
                assert rec.rec_headers.get_header("WARC-Payload-Digest").startswith("sha1:")
    assert kinds == {"warcinfo": 1, "request": 11, "response": 11}

    def record(path: str):
        r = rows[web.url(0, path)]
        uri, status, headers, body = read_response(
            root / r["warc_file"], r["warc_offset"], r["warc_length"]
        )
        assert uri == r["final_url"] and status == r["status"] and len(body) == r["bytes"]
        return {k.lower(): v for k, v in headers}, body

    def raw_payload(path: str) -> bytes:
        r = rows[web.url(0, path)]
        with open(root / r["warc_file"], "rb") as f:
            f.seek(r["warc_offset"])
            rec = next(iter(ArchiveIterator(io.BytesIO(f.read(r["warc_length"])))))
            return rec.raw_stream.read()

    # A gzip body is stored as it came over the wire, with headers that say so; readers decode.
    page = html("gzipped", "Compressed on the wire. " * 20)
    headers, body = record("/gzip.html")
    assert body == page
    wire = gzip.compress(page, mtime=0)  # what the server sent
    assert headers["content-encoding"] == "gzip" and headers["content-length"] == str(len(wire))
    assert raw_payload("/gzip.html") == wire
    # Two gzip members would read back as the first only: that body is stored decoded.
    headers, body = record("/gzip-members.html")
    assert body == html("two members", "Half of it in each member. " * 20)
    assert "content-encoding" not in headers and headers["content-length"] == str(len(body))
    assert raw_payload("/gzip-members.html") == body
    # Plain bodies are stored as they came.
    headers, body = record("/ok.html")
    assert "content-encoding" not in headers and raw_payload("/ok.html") == body
    # Charsets declared only in a meta tag: the bytes are kept exactly as served.
    _, body = record("/cp1251.html")
    assert "Привет" in body.decode("cp1251") and b'charset="windows-1251"' in body
    _, body = record("/sjis.html")
    assert "こんにちは" in body.decode("shift_jis")
    _, body = record("/malformed.html")
    assert body.startswith(b"<html><head><title>broken")
    # The redirect chain's archived record is the final page, under its final URL.
    uri, *_ = read_response(
        root / rows[web.url(0, "/r/1")]["warc_file"],
        rows[web.url(0, "/r/1")]["warc_offset"],
        rows[web.url(0, "/r/1")]["warc_length"],
    )
    assert uri == web.url(0, "/ok2.html")


def test_rerun_skips_with_marker(web, hostile_run):
    root, stats, *_ = hostile_run
    n_before = len(web.log)
    again = run_part(root / "links" / "part-00000.parquet", root, fast_cfg())
    assert again.extra.get("skipped") is True
    assert again.n_out == stats.n_out and len(web.log) == n_before


def test_empty_part(tmp_path):
    links = write_links(tmp_path / "links" / "part-00007.parquet", [])
    stats = run_part(links, tmp_path, fast_cfg())
    assert (stats.n_in, stats.n_out, sum(stats.dropped.values())) == (0, 0, 0)
    assert read_table(fetches_path(tmp_path, "part-00007")).num_rows == 0
    assert read_table(tmp_path / "ledger" / "crawl" / "part-00007.parquet").num_rows == 0


def test_ssrf_allow_hosts_empty(tmp_path):
    """With no allow_hosts every loopback link is blocked and the server sees no request at
    all, robots.txt included; a redirect from an allowed host to a forbidden one is refused."""
    server = CrawlServer([hostile_site(bomb_mb=1), plain_site(1)]).start()
    try:
        urls = [
            server.url(0, "/ok.html"),
            server.url(1, "/page0.html"),
            f"http://localhost:{server.ports[0]}/ok.html",
            f"http://[::1]:{server.ports[0]}/ok.html",
            f"http://0.0.0.0:{server.ports[0]}/ok.html",
            "http://169.254.169.254/latest/meta-data/",
            "http://192.168.1.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://224.0.0.1/",
        ]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        stats = run_part(links, tmp_path, fast_cfg(allow_hosts=[]))
        rows = fetch_rows(tmp_path)
        assert {u: r["error"] for u, r in rows.items()} == {u: "blocked_address" for u in urls}
        assert all(r["status"] is None and r["fetched_at"] is None for r in rows.values())
        assert stats.n_out == 0 and stats.dropped == Counter(blocked_address=len(urls))
        assert server.log == []

        # Allowed host (127.0.0.1) redirecting to a forbidden address: refused after the hop.
        site = server.sites[0]
        from tests.crawl_server import redirect

        site.route("/hop-private", redirect(f"http://127.0.0.2:{server.ports[0]}/ok.html"))
        site.route("/hop-localhost", redirect(f"http://localhost:{server.ports[0]}/secret-admin"))
        site.route("/hop-v6", redirect(f"http://[::1]:{server.ports[0]}/secret-admin"))
        urls = [server.url(0, p) for p in ("/hop-private", "/hop-localhost", "/hop-v6", "/ok.html")]
        root2 = tmp_path / "second"
        links = write_links(root2 / "links" / "part-00000.parquet", urls)
        run_part(links, root2, fast_cfg(allow_hosts=["127.0.0.1"]))
        rows = fetch_rows(root2)
        assert [rows[u]["error"] for u in urls] == ["blocked_address"] * 3 + [None]
        assert server.fetched(0, "/secret-admin") == 0
    finally:
        server.stop()


def test_proxy_virtual_hosts(tmp_path):
    """crawl.proxy: every request, robots.txt included, goes through the forward proxy; the
    virtual host names never resolve and pass the guard because allow_hosts names them."""
    news = Site(robots="User-agent: *\nDisallow: /drafts/\n")
    news.static("/2017/story.html", html("story", "News of the day. " * 10))
    news.static("/drafts/x.html", html("draft", "unpublished"))
    wiki = Site(robots="")
    wiki.static("/wiki/Page", html("Page", "An encyclopedia article. " * 10))
    proxy = CrawlServer(
        [Site()], vhosts={"www.daily-ledger.test": news, "en.wikipedia.org": wiki}
    ).start()
    try:
        urls = [
            "http://www.daily-ledger.test/2017/story.html",
            "http://www.daily-ledger.test/drafts/x.html",
            "http://en.wikipedia.org/wiki/Page",
            "http://not-allowed.test/x",
        ]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        cfg = fast_cfg(
            proxy=f"http://127.0.0.1:{proxy.ports[0]}",
            allow_hosts=["www.daily-ledger.test", ".wikipedia.org"],
        )
        run_part(links, tmp_path, cfg)
        rows = fetch_rows(tmp_path)
        assert [rows[u]["error"] for u in urls] == [None, "robots", None, "dns"]
        assert proxy.vhits[("www.daily-ledger.test", "/robots.txt")] == 1
        assert proxy.vhits[("www.daily-ledger.test", "/drafts/x.html")] == 0
        assert proxy.vhits[("not-allowed.test", "/x")] == 0
        r = rows[urls[0]]
        uri, status, _, body = read_response(
            tmp_path / r["warc_file"], r["warc_offset"], r["warc_length"]
        )
        assert (uri, status) == (urls[0], 200) and b"News of the day." in body
    finally:
        proxy.stop()


def test_warc_rotation(tmp_path):
    server = CrawlServer([plain_site(12)]).start()
    try:
        urls = [server.url(0, f"/page{i}.html") for i in range(12)]
        links = write_links(tmp_path / "links" / "part-00001.parquet", urls)
        stats = run_part(links, tmp_path, fast_cfg(warc_max_bytes=1500))
        warcs = part_warcs(tmp_path / "crawl" / "warc", "part-00001")
        assert len(warcs) > 2 and stats.extra["warc_files"] == len(warcs)
        rows = fetch_rows(tmp_path, "part-00001")
        assert {r["warc_file"] for r in rows.values()} == {f"crawl/warc/{p.name}" for p in warcs}
        for p in warcs:
            assert subprocess.run([str(WARCIO), "check", str(p)], check=False).returncode == 0
        for r in rows.values():
            uri, *_ = read_response(tmp_path / r["warc_file"], r["warc_offset"], r["warc_length"])
            assert uri == r["url"]
    finally:
        server.stop()


def test_resume_after_sigkill(tmp_path):
    """SIGKILL the crawl subprocess mid-way, run the part again: the same URLs are fetched as
    in a clean run, every fetch row points at its own record, no WARC record is duplicated."""
    n_sites, per_site = 4, 60

    server = CrawlServer([slow_bench_site(per_site) for _ in range(n_sites)]).start()
    try:
        urls = [server.url(s, f"/a/{i}.html") for s in range(n_sites) for i in range(per_site)]
        urls += [server.url(0, "/admin/x.html"), server.url(1, "/missing")]
        cfg = fast_cfg(concurrent_per_domain=2, warc_max_bytes=40_000)

        clean = tmp_path / "clean"
        links = write_links(clean / "links" / "part-00000.parquet", urls)
        run_part(links, clean, cfg)

        killed = tmp_path / "killed"
        links = write_links(killed / "links" / "part-00000.parquet", urls)
        proc = crawl_subprocess(links, killed, "part-00000", cfg)
        jpath = journal_path(killed, "part-00000")
        wait_for_journal(jpath, 90)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        n_journaled = jpath.read_bytes().count(b"\n") - 1
        assert 0 < n_journaled < len(urls), "the kill must land mid-crawl"
        # Simulate the worst tail: half a record written after the last journal line.
        last = max(part_warcs(killed / "crawl" / "warc", "part-00000"))
        with open(last, "ab") as f:
            f.write(gzip.compress(b"WARC/1.0\r\nWARC-Type: response\r\n")[:20])

        stats = run_part(links, killed, cfg)
        assert stats.extra["resumed"] == n_journaled
        # Politeness held throughout: never more than concurrent_per_domain requests per site.
        assert max(server.max_inflight.values()) <= cfg.concurrent_per_domain

        a, b = fetch_rows(clean), fetch_rows(killed)
        assert a.keys() == b.keys() == set(urls)
        assert {u: r["error"] for u, r in a.items()} == {u: r["error"] for u, r in b.items()}
        kept = sorted(u for u, r in b.items() if r["error"] is None)
        assert len(kept) == n_sites * per_site
        for p in part_warcs(killed / "crawl" / "warc", "part-00000"):
            assert subprocess.run([str(WARCIO), "check", str(p)], check=False).returncode == 0
        targets = [uri for _, uri in warc_responses(killed)]
        assert sorted(targets) == kept  # each kept URL archived exactly once, nothing else
        for u in kept:
            r = b[u]
            uri, status, _, body = read_response(
                killed / r["warc_file"], r["warc_offset"], r["warc_length"]
            )
            assert (uri, status, len(body)) == (u, 200, r["bytes"])
    finally:
        server.stop()


def test_killed_driver_leaves_no_orphan_crawl(tmp_path):
    """SIGKILL the driver process (run_part) mid-crawl: its crawl subprocess dies with it, so
    the journal stops growing and a rerun completes the part alone."""
    server = CrawlServer([slow_bench_site(80) for _ in range(2)]).start()
    try:
        urls = [server.url(s, f"/a/{i}.html") for s in range(2) for i in range(80)]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        cfg = fast_cfg(concurrent_per_domain=1)
        (tmp_path / "cfg.json").write_text(cfg.model_dump_json())
        code = (
            "import sys; from pathlib import Path; from pipeline.core.config import CrawlConfig;"
            "from pipeline.crawl import run_part;"
            f"run_part(Path({str(links)!r}), Path({str(tmp_path)!r}),"
            f" CrawlConfig.model_validate_json(Path({str(tmp_path / 'cfg.json')!r}).read_text()))"
        )
        driver = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[1])
        jpath = journal_path(tmp_path, "part-00000")
        wait_for_journal(jpath, 20)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        time.sleep(0.5)
        size = jpath.stat().st_size
        time.sleep(1.0)
        assert jpath.stat().st_size == size, "an orphaned crawl is still writing"
        stats = run_part(links, tmp_path, cfg)
        assert 0 < stats.extra["resumed"] < len(urls)
        assert stats.n_out == len(urls)
        assert sorted(uri for _, uri in warc_responses(tmp_path)) == sorted(urls)
    finally:
        server.stop()


def test_sigterm_stops_cleanly_and_resumes(tmp_path):
    """SIGTERM (a cancelled flow, Ctrl-C): Scrapy stops gracefully, the subprocess exits
    non-zero and journals no invented failures; the rerun fetches the rest."""
    server = CrawlServer([slow_bench_site(60) for _ in range(2)]).start()
    try:
        urls = [server.url(s, f"/a/{i}.html") for s in range(2) for i in range(60)]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        cfg = fast_cfg(concurrent_per_domain=1)
        proc = crawl_subprocess(links, tmp_path, "part-00000", cfg)
        jpath = journal_path(tmp_path, "part-00000")
        wait_for_journal(jpath, 10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 4
        journaled = [json.loads(line) for line in jpath.read_text().splitlines()[1:]]
        assert 0 < len(journaled) < len(urls)
        assert all(r["error"] is None for r in journaled)
        stats = run_part(links, tmp_path, cfg)
        assert stats.extra["resumed"] == len(journaled)
        assert stats.n_out == len(urls) and not stats.dropped
    finally:
        server.stop()


def test_retry_after_pauses_the_whole_site(tmp_path):
    """A 429 with Retry-After: 1 holds back the retry and every other page of that site for a
    second; another site goes on meanwhile."""
    from tests.crawl_server import Resp, first_then

    limited = plain_site(6)
    ok = Resp(200, html("ok", "fine now"), [("Content-Type", "text/html")])
    limited.route("/limited", first_then(Resp(429, b"", [("Retry-After", "1")]), ok))
    server = CrawlServer([limited, plain_site(6)]).start()
    try:
        urls = [server.url(0, "/limited")] + [
            server.url(s, f"/page{i}.html") for s in (0, 1) for i in range(6)
        ]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        stats = run_part(links, tmp_path, fast_cfg(concurrent_per_domain=1))
        assert stats.n_out == len(urls)
        port0, port1 = server.ports
        t429 = next(t for t, p, path in server.times if p == port0 and path == "/limited")
        after = [t - t429 for t, p, path in server.times if p == port0 and t > t429]
        assert len(after) >= 1 and min(after) >= 0.95, after
        # The other site was not held back.
        others = [
            t - t429 for t, p, path in server.times if p == port1 and path.startswith("/page")
        ]
        assert any(0 < dt < 0.9 for dt in others) or max(others) < 0
    finally:
        server.stop()


def test_robots_obeyed_by_requests_waiting_for_it(tmp_path):
    """Many requests to a site queue up while its robots.txt is still downloading: every one
    of them must see the parser (Scrapy's own middleware handed all but the first None,
    i.e. allow-all, and fetched disallowed pages)."""
    import asyncio

    from tests.crawl_server import Resp

    site = plain_site(pages=4)

    async def slow_robots(req, w):
        await asyncio.sleep(0.5)
        return Resp(200, b"User-agent: *\nDisallow: /private/\n", [("Content-Type", "text/plain")])

    site.route("/robots.txt", slow_robots)
    for i in range(12):
        site.static(f"/private/p{i}.html", html(f"private {i}", "robots says no " * 20))
    server = CrawlServer([site]).start()
    try:
        private = [server.url(0, f"/private/p{i}.html") for i in range(12)]
        public = [server.url(0, f"/page{i}.html") for i in range(4)]
        links = write_links(tmp_path / "links" / "part-00000.parquet", private + public)
        stats = run_part(links, tmp_path, fast_cfg(concurrent_per_domain=8))
        rows = fetch_rows(tmp_path)
        assert [rows[u]["error"] for u in private] == ["robots"] * 12
        assert [rows[u]["error"] for u in public] == [None] * 4
        assert sum(server.fetched(0, f"/private/p{i}.html") for i in range(12)) == 0
        assert stats.dropped == {"robots": 12} and stats.n_out == 4
    finally:
        server.stop()


# -- incremental recrawl: a links part that gained a month of URLs ----------------------------
def fail_first(n: int, status: int = 503):
    """A page that answers `status` to its first n requests, then 200."""
    from tests.crawl_server import Resp

    seen = {"n": 0}

    async def h(req, w):
        seen["n"] += 1
        if seen["n"] <= n:
            return Resp(status, b"down", [("Content-Type", "text/html")])
        return Resp(200, html("back", "Up again. " * 20), [("Content-Type", "text/html")])

    return h


def page_hits(server: CrawlServer, since: Counter | None = None) -> Counter:
    """Requests per (port, path), robots.txt left out (a run may fetch it once per site)."""
    now = Counter({k: v for k, v in server.hits.items() if k[1] != "/robots.txt"})
    return now - (since or Counter())


def sha256(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_incremental_recrawl(tmp_path, monkeypatch):
    """Month 2 merges new URLs into the links part: only they (and month 1's transient
    failure) are fetched; month 1's rows and WARC file stay exactly as they were."""
    site = plain_site(10, robots="User-agent: *\nDisallow: /private/\n")
    site.route("/flaky", fail_first(2))  # 503 on both attempts of run 1 (retry_times=1)
    site.static("/private/x.html", html("private", "robots says no"))
    server = CrawlServer([site]).start()
    try:
        cfg = fast_cfg()
        assert "http_5xx" in cfg.recrawl_errors and "http_4xx" not in cfg.recrawl_errors
        old = [server.url(0, f"/page{i}.html") for i in range(6)]
        old += [server.url(0, p) for p in ("/flaky", "/missing", "/private/x.html")]
        removed = server.url(0, "/page5.html")  # taken down before month 2
        new = [server.url(0, f"/page{i}.html") for i in range(6, 10)]
        links_path = tmp_path / "links" / "part-00000.parquet"

        write_links(links_path, old)
        s1 = run_part(links_path, tmp_path, cfg)
        rows1 = fetch_rows(tmp_path)
        assert rows1[server.url(0, "/flaky")]["error"] == "http_5xx"
        assert rows1[server.url(0, "/missing")]["error"] == "http_4xx"
        assert rows1[server.url(0, "/private/x.html")]["error"] == "robots"
        warc0 = tmp_path / "crawl" / "warc" / "part-00000-00000.warc.gz"
        sha0 = sha256(warc0)
        hits1 = page_hits(server)

        month2 = [u for u in old if u != removed] + new
        write_links(links_path, list(reversed(month2)))  # order in the part does not matter
        t0 = time.monotonic()
        s2 = run_part(links_path, tmp_path, cfg)
        seconds = time.monotonic() - t0

        # The web saw the new pages and the retried 503 only, once each.
        port = server.ports[0]
        want = Counter({(port, urlsplit(u).path): 1 for u in [*new, server.url(0, "/flaky")]})
        assert page_hits(server, hits1) == want, seconds

        rows2 = fetch_rows(tmp_path)
        assert set(rows2) == set(month2)
        carried = [u for u in month2 if u not in new and not u.endswith("/flaky")]
        for u in carried:
            assert rows2[u] == rows1[u], u  # every field, fetched_at and WARC offsets included
        flaky = rows2[server.url(0, "/flaky")]
        assert (flaky["status"], flaky["error"]) == (200, None)
        assert flaky["fetched_at"] > rows1[server.url(0, "/flaky")]["fetched_at"]

        # Month 1's WARC file is untouched; month 2's records are in a new file.
        warc1 = tmp_path / "crawl" / "warc" / "part-00000-00001.warc.gz"
        assert sha256(warc0) == sha0
        assert part_warcs(tmp_path / "crawl" / "warc", "part-00000") == [warc0, warc1]
        for p in (warc0, warc1):
            check = subprocess.run(
                [str(WARCIO), "check", "-v", str(p)], capture_output=True, text=True, check=False
            )
            assert check.returncode == 0, check.stdout + check.stderr
        fresh = sorted([*new, server.url(0, "/flaky")])
        assert sorted(uri for f, uri in warc_responses(tmp_path) if f == warc1.name) == fresh
        for u in fresh:
            r = rows2[u]
            assert r["warc_file"] == "crawl/warc/part-00000-00001.warc.gz"
            uri, status, _, body = read_response(
                tmp_path / r["warc_file"], r["warc_offset"], r["warc_length"]
            )
            assert (uri, status, len(body)) == (u, 200, r["bytes"])
        # The taken-down page's record stays in the old file (until a compaction) but no row
        # of the fetch log or the ledger names it any more.
        assert removed in [uri for f, uri in warc_responses(tmp_path) if f == warc0.name]

        # Stats and ledger describe the new link set.
        s2.check()
        assert s2.n_in == len(month2) and s2.n_out == len(month2) - 2
        assert s2.dropped == Counter(http_4xx=1, robots=1)
        assert s2.extra["carried_over"] == len(carried) and s2.extra["removed_links"] == 1
        assert s2.extra["crawled_now"] == len(new) + 1
        assert set(s2.outputs) == {
            "crawl/fetches/part-00000.parquet",
            "ledger/crawl/part-00000.parquet",
            "crawl/warc/part-00000-00000.warc.gz",
            "crawl/warc/part-00000-00001.warc.gz",
        }
        ledger = {
            r["key"]: r
            for r in read_table(tmp_path / "ledger/crawl/part-00000.parquet").to_pylist()
        }
        assert set(ledger) == {server.url(0, "/missing"), server.url(0, "/private/x.html")}
        assert ledger[server.url(0, "/missing")]["detail"] == "status 404"
        assert s1.n_in == len(old)

        # Same links again: the done marker matches, nothing at all is requested.
        n_log = len(server.log)
        assert run_part(links_path, tmp_path, cfg).extra.get("skipped") is True
        # Links only removed: nothing to fetch, and no crawl subprocess is started.
        import pipeline.crawl.driver as crawl_mod

        def no_subprocess(*a, **kw):
            raise AssertionError("a crawl subprocess was started")

        monkeypatch.setattr(crawl_mod, "crawl_subprocess", no_subprocess)
        month3 = [u for u in month2 if u != new[0]]
        write_links(links_path, month3)
        s3 = run_part(links_path, tmp_path, cfg)
        assert len(server.log) == n_log
        rows3 = fetch_rows(tmp_path)
        assert set(rows3) == set(month3) and all(rows3[u] == rows2[u] for u in month3)
        assert s3.extra["removed_links"] == 1 and s3.n_in == len(month3)
        assert (
            sha256(warc0) == sha0
            and len(part_warcs(tmp_path / "crawl" / "warc", "part-00000")) == 2
        )
    finally:
        server.stop()


@pytest.mark.parametrize("broken", ["missing_warc", "bad_fetch_log"])
def test_incremental_falls_back_to_full_crawl(tmp_path, broken):
    """An earlier result that cannot be trusted is not reused: the whole part is crawled,
    into WARC files after the ones still there (the archive is append-only)."""
    server = CrawlServer([plain_site(5)]).start()
    try:
        cfg = fast_cfg()
        urls = [server.url(0, f"/page{i}.html") for i in range(5)]
        links_path = write_links(tmp_path / "links" / "part-00000.parquet", urls[:4])
        run_part(links_path, tmp_path, cfg)
        warc0 = tmp_path / "crawl" / "warc" / "part-00000-00000.warc.gz"
        sha0 = sha256(warc0)
        if broken == "missing_warc":
            warc0.unlink()
        else:
            fetches_path(tmp_path, "part-00000").write_bytes(b"not parquet")
        write_links(links_path, urls)
        stats = run_part(links_path, tmp_path, cfg)
        assert page_hits(server) == Counter(
            {(server.ports[0], f"/page{i}.html"): 2 if i < 4 else 1 for i in range(5)}
        )
        assert "carried_over" not in stats.extra and stats.n_out == 5
        rows = fetch_rows(tmp_path)
        assert set(rows) == set(urls)
        new = warc0 if broken == "missing_warc" else warc0.with_name("part-00000-00001.warc.gz")
        assert {r["warc_file"] for r in rows.values()} == {f"crawl/warc/{new.name}"}
        assert part_warcs(tmp_path / "crawl" / "warc", "part-00000") == sorted({warc0, new})
        if broken == "bad_fetch_log":
            assert sha256(warc0) == sha0
        assert sorted(uri for f, uri in warc_responses(tmp_path) if f == new.name) == sorted(urls)
        assert subprocess.run([str(WARCIO), "check", str(new)], check=False).returncode == 0
    finally:
        server.stop()


def _sigkill_crawl_after(jpath: Path, root: Path, n_lines: int) -> None:
    """SIGKILL the crawl subprocess of `root` once its journal holds n_lines: a kill that
    lands mid-crawl however slowly the machine starts the subprocess."""
    wait_for_journal(jpath, n_lines, timeout=120)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if _writes(int(pid), jpath):
            os.kill(int(pid), signal.SIGKILL)


def _writes(pid: int, path: Path) -> bool:
    """The process has `path` open (a crawl forked from the fork server carries the server's
    command line, not its part's)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
    return False


def test_incremental_crawl_killed_and_resumed(tmp_path):
    """An incremental crawl killed midway resumes from its journal on the rerun, and neither
    the kill nor the WARC recovery touches the earlier result's WARC file."""
    from pipeline.core.errors import PartError

    server = CrawlServer([slow_bench_site(100, delay=0.1)]).start()
    try:
        cfg = fast_cfg(concurrent_per_domain=1, concurrent_requests=1, warc_max_bytes=20_000)
        old = [server.url(0, f"/a/{i}.html") for i in range(5)]
        new = [server.url(0, f"/a/{i}.html") for i in range(5, 95)]
        links_path = write_links(tmp_path / "links" / "part-00000.parquet", old)
        run_part(links_path, tmp_path, cfg)
        first = part_warcs(tmp_path / "crawl" / "warc", "part-00000")
        shas = {p.name: sha256(p) for p in first}
        write_links(links_path, old + new)
        jpath = journal_path(tmp_path, "part-00000")
        watcher = threading.Thread(target=_sigkill_crawl_after, args=(jpath, tmp_path, 10))
        watcher.start()
        with pytest.raises(PartError):
            run_part(links_path, tmp_path, cfg)  # SIGKILLed mid-crawl (~9 s of pages)
        watcher.join()
        n_journaled = jpath.read_bytes().count(b"\n") - 1
        assert 0 < n_journaled < len(new), "the kill must land mid-crawl"
        assert {p.name: sha256(p) for p in first} == shas
        stats = run_part(links_path, tmp_path, cfg)
        assert stats.extra["resumed"] == n_journaled and stats.extra["carried_over"] == len(old)
        assert {p.name: sha256(p) for p in first} == shas
        for u in old:
            assert server.fetched(0, urlsplit(u).path) == 1
        rows = fetch_rows(tmp_path)
        assert set(rows) == set(old + new) and all(r["error"] is None for r in rows.values())
        assert sorted(uri for _, uri in warc_responses(tmp_path)) == sorted(old + new)
        for p in part_warcs(tmp_path / "crawl" / "warc", "part-00000"):
            assert subprocess.run([str(WARCIO), "check", str(p)], check=False).returncode == 0
        for u in new:
            r = rows[u]
            assert r["warc_file"] not in {f"crawl/warc/{n}" for n in shas}
            uri, status, _, body = read_response(
                tmp_path / r["warc_file"], r["warc_offset"], r["warc_length"]
            )
            assert (uri, status, len(body)) == (u, 200, r["bytes"])
    finally:
        server.stop()
