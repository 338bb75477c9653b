"""A local demo web: sites, traps, a Pushshift-format dump linking to them, and a forward proxy.

`generate(out_dir, seed)` builds everything in memory from code (no copied text), writes the
submission dump to out_dir/input/RS_demo-2017-06.zst and a small evaluation set of its own to
out_dir/input/evalsets/demo_eval.txt (a few of its lines planted verbatim into kept articles,
for `webtext overlap`), and returns a `DemoWeb` that knows, for every trap, how many links
were designed to fall into it, and which evaluation lines the audit must find. `serve(web)`
runs an HTTP forward proxy on 127.0.0.1 that answers for all demo hosts, so demo URLs carry no
port and the dump is the same on every run. `demo_config(...)` gives the matching partial
corpus config.

Hosts use the reserved .test TLD (never resolvable) plus en.wikipedia.org, which is only ever
reached through the proxy.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import urllib.robotparser
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zstandard

from demo import text as T
from demo.archives import FakeArchive, Snapshot
from demo.html import (
    COMMENTS,
    Link,
    SiteStyle,
    _slug,
    article_page,
    index_page,
    not_found_page,
    wiki_page,
)
from pipeline.core.config import HarvestConfig

Response = tuple[int, dict[str, str], bytes]
HTML = "text/html; charset=utf-8"
DUMP_NAME = "RS_demo-2017-06.zst"
WIKI_HOST = "en.wikipedia.org"

# Submissions are spread over June 2017, like one monthly Pushshift file.
MONTH_START = int(datetime(2017, 6, 1, tzinfo=UTC).timestamp())
MONTH_END = int(datetime(2017, 7, 1, tzinfo=UTC).timestamp()) - 1

# (host, name, tagline, lang, layout, sections, topics)
SITES: list[tuple[str, str, str, str, str, tuple[str, ...], tuple[str, ...]]] = [
    (
        "www.daily-ledger.test",
        "The Daily Ledger",
        "News you can count on",
        "en",
        "news",
        ("News", "Business", "Opinion", "Local"),
        ("city", "business"),
    ),
    (
        "news.harbor-times.test",
        "Harbor Times",
        "The voice of the waterfront since 1921",
        "en",
        "news",
        ("Local", "Sport", "Weather", "Letters"),
        ("city", "sports"),
    ),
    (
        "www.northfield-gazette.test",
        "Northfield Gazette",
        "Your county, every morning",
        "en",
        "magazine",
        ("News", "Outdoors", "Community", "Opinion"),
        ("city", "outdoors"),
    ),
    (
        "blog.quietcompiler.test",
        "Quiet Compiler",
        "Notes on software, slowly written",
        "en",
        "blog",
        ("Programming", "Tools", "Security"),
        ("tech",),
    ),
    (
        "www.orbit-review.test",
        "Orbit Review",
        "Science for the curious",
        "en",
        "magazine",
        ("Space", "Earth", "Life", "Physics"),
        ("science",),
    ),
    (
        "www.greenfork-kitchen.test",
        "Greenfork Kitchen",
        "Seasonal cooking from a small kitchen",
        "en",
        "blog",
        ("Recipes", "Baking", "Markets"),
        ("food",),
    ),
    (
        "www.trailhead-journal.test",
        "Trailhead Journal",
        "Walks, climbs and quiet places",
        "en",
        "magazine",
        ("Trails", "Gear", "Stories"),
        ("outdoors",),
    ),
    (
        "www.marketwire-weekly.test",
        "Marketwire Weekly",
        "Business news without the noise",
        "en",
        "news",
        ("Markets", "Companies", "Work", "Economy"),
        ("business",),
    ),
    (
        "www.pitchside-report.test",
        "Pitchside Report",
        "Local sport, properly covered",
        "en",
        "news",
        ("Football", "Cricket", "Rowing", "Results"),
        ("sports",),
    ),
    (
        "www.tagesblick.test",
        "Tagesblick",
        "Nachrichten aus der Region",
        "de",
        "news",
        ("Lokales", "Politik", "Wirtschaft", "Sport"),
        (),
    ),
    (
        "www.le-quotidien-vert.test",
        "Le Quotidien Vert",
        "L'actualité de votre région",
        "fr",
        "magazine",
        ("Actualite", "Societe", "Economie", "Sport"),
        (),
    ),
    (
        "www.diario-del-puerto.test",
        "Diario del Puerto",
        "Noticias de la ciudad y la comarca",
        "es",
        "news",
        ("Local", "Politica", "Economia", "Deportes"),
        (),
    ),
]
ENGLISH_HOSTS = [s[0] for s in SITES if s[3] == "en"]
ROBOTS_HOST = "www.northfield-gazette.test"
ROBOTS_PATH = "/members/"

SUBREDDITS = {
    "city": ["news", "urbanplanning", "inthenews"],
    "tech": ["programming", "technology", "opensource"],
    "science": ["science", "EarthScience", "space"],
    "food": ["Cooking", "Breadit", "food"],
    "outdoors": ["hiking", "CampingandHiking", "travel"],
    "business": ["business", "economics"],
    "sports": ["sports", "soccer"],
    "de": ["de", "germany"],
    "fr": ["france"],
    "es": ["spain", "es"],
    "wiki": ["todayilearned", "wikipedia"],
}

# Per-site plan: how many regular (kept) articles each English site links to.
N_REGULAR_PER_SITE = 16
N_LOW_KARMA = 25
N_SELF = 15
N_BLOCKED = 20  # imgur, youtube, gfycat (blocked media hosts) and i.redd.it (a Reddit link)
N_MERGED = 8
N_EXACT = 6
N_NEAR = 6
N_SHORT = 8
N_FOREIGN_PER_LANG = 8
N_WIKI = 10
N_ROBOTS = 5
N_MISSING = 6
# The demo's own evaluation set: N_EVAL lines, of which some are planted verbatim (each as a
# paragraph of its own) into regular articles that no duplicate copies: (English site index,
# lines planted into its last regular article).
EVAL_DIR = "evalsets"
EVAL_NAME = "demo_eval.txt"
N_EVAL = 30
EVAL_PLANTS = [(0, 2), (3, 2), (4, 1)]
EVAL_NGRAM = 8

# Dead links (2026's web) and their archived copies on the demo's fake web archives, served by
# the demo proxy as these hosts: (host, how the live link is dead, where a copy is archived).
# live: 404 | 410 | soft404 (a "not found" page with 200) | parked (the whole domain) |
# landing (redirected to the front page, with the other links of that host). archive:
# wayback | commoncrawl | pdf (only a PDF capture) | None (no capture anywhere).
WAYBACK_HOST = "web.archive.test"
CC_INDEX_HOST = "index.commoncrawl.test"
CC_DATA_HOST = "data.commoncrawl.test"
ARCHIVE_HOSTS = [CC_DATA_HOST, CC_INDEX_HOST, WAYBACK_HOST]
PARKED_HOST = "www.cityscope-daily.test"
LANDING_HOST = "www.marketwire-weekly.test"
DEAD_LINKS: list[tuple[str, str, str | None]] = [
    ("www.daily-ledger.test", "404", "wayback"),
    ("www.daily-ledger.test", "404", "wayback"),
    ("news.harbor-times.test", "410", "commoncrawl"),
    ("news.harbor-times.test", "410", "commoncrawl"),
    ("www.orbit-review.test", "soft404", "wayback"),
    (PARKED_HOST, "parked", "wayback"),
    (PARKED_HOST, "parked", None),
    (LANDING_HOST, "landing", "commoncrawl"),
    (LANDING_HOST, "landing", None),
    (LANDING_HOST, "landing", None),
    ("www.trailhead-journal.test", "404", "pdf"),
]
# Common Crawl crawls of the fake index: one near the posts (June 2017), one years later.
CC_CRAWLS = {
    "CC-MAIN-2017-26": ("2017-06-22T00:00:00", "2017-06-30T00:00:00"),
    "CC-MAIN-2021-10": ("2021-02-24T00:00:00", "2021-03-09T00:00:00"),
}


@dataclass
class PageInfo:
    """What a demo URL is, for tests and for deriving the expected counts."""

    url: str
    kind: str  # article | short | foreign | wiki | file | redirect | index | archived
    lang: str = "en"
    text: str = ""  # body text as generated (paragraphs joined by blank lines)
    group: str = ""  # dedup group: the original article's URL for copies
    dup: str = ""  # "" | exact | near


@dataclass
class DemoWeb:
    out_dir: Path
    seed: int
    pages: dict[str, dict[str, Response]]  # host -> path -> (status, headers, body)
    robots: dict[str, str]  # host -> robots.txt (hosts without one answer 404)
    hosts: list[str]
    dump_path: Path
    # reason -> number of items designed for it (the funnel's drop reasons), plus "shards":
    # the number of documents expected in the final shards.
    expected: dict[str, int]
    expected_by_stage: dict[str, dict[str, int]]  # stage -> reason -> n, same numbers
    info: dict[str, PageInfo] = field(default_factory=dict)  # url -> what it is
    not_found: dict[str, bytes] = field(default_factory=dict)  # host -> its 404 page
    links: dict[str, list[str]] = field(default_factory=dict)  # design -> URLs submitted for it
    submissions: list[dict[str, Any]] = field(default_factory=list)  # as written to the dump
    eval_path: Path | None = None  # the evaluation set: one example per line
    eval_lines: list[str] = field(default_factory=list)
    eval_planted: dict[str, list[int]] = field(default_factory=dict)  # url -> line numbers
    # What `webtext overlap` must report for the evaluation set: examples, examples with
    # overlap (= the planted lines), its distinct 8-grams and those found (the planted ones').
    expected_overlap: dict[str, int] = field(default_factory=dict)
    # The fake web archives (served by the proxy as ARCHIVE_HOSTS) and, per dead link, where
    # its copy is: url -> (live, archive) as in DEAD_LINKS.
    archive: FakeArchive | None = None
    dead: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # Documents expected in the shards by source (live, wayback, commoncrawl).
    expected_sources: dict[str, int] = field(default_factory=dict)

    @property
    def n_pages(self) -> int:
        return sum(len(p) for p in self.pages.values())

    @property
    def expected_articles(self) -> int:
        return self.expected["shards"]


# --------------------------------------------------------------------------------------------
# Building the sites
# --------------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, seed: int):
        self.seed = seed
        self.styles: dict[str, SiteStyle] = {}
        self.topics: dict[str, tuple[str, ...]] = {}
        for host, name, tagline, lang, layout, sections, topics in SITES:
            self.styles[host] = SiteStyle(host, name, tagline, lang, layout, sections)
            self.topics[host] = topics
        self.styles[WIKI_HOST] = SiteStyle(
            WIKI_HOST, "Wikipedia", "The free encyclopedia", "en", "wiki", ()
        )
        # A city paper whose domain expired after 2017: parked now, its pages in the archives.
        self.styles[PARKED_HOST] = SiteStyle(
            PARKED_HOST, "Cityscope Daily", "The city, daily", "en", "news", ("City", "Life")
        )
        self.topics[PARKED_HOST] = ("city",)
        self.pages: dict[str, dict[str, Response]] = {h: {} for h in self.styles}
        self.info: dict[str, PageInfo] = {}
        self.listing: dict[str, list[tuple[Link, str]]] = {h: [] for h in self.styles}
        # Articles are rendered last, once every site's article list is known (related links).
        self.pending: list[tuple[str, str, T.Article, str, str]] = []
        self.eval_lines: list[str] = []
        self.eval_planted: dict[str, list[int]] = {}

    def rng(self, label: str) -> random.Random:
        # String seeds are hashed with SHA-512 by `random`: stable across runs and platforms.
        return random.Random(f"webtext-demo:{self.seed}:{label}")

    def unique_path(self, host: str, path: str) -> str:
        base, n = path, 2
        while path in self.pages[host] or any(p[0] == host and p[1] == path for p in self.pending):
            path = f"{base}-{n}"
            n += 1
        return path

    def article_path(self, host: str, title: str, day: int, rng: random.Random) -> str:
        slug = "-".join(_slug(title).split("-")[:9])
        layout, sec = self.styles[host].layout, self.styles[host].sections
        if layout == "news":
            path = f"/{sec[0].lower()}/2017/06/{day:02d}/{slug}"
        elif layout == "blog":
            path = f"/2017/06/{slug}"
        else:
            path = f"/{rng.choice(sec).lower()}/{slug}-{rng.randint(10000, 99999)}"
        return self.unique_path(host, path)

    def add_article(
        self,
        host: str,
        art: T.Article,
        rng: random.Random,
        *,
        kind: str = "article",
        path: str | None = None,
        dup: str = "",
        group: str = "",
        listed: bool = True,
    ) -> str:
        day = rng.randint(1, 28)
        path = path or self.article_path(host, art.title, day, rng)
        url = f"http://{host}{path}"
        self.pending.append((host, path, art, f"2017-06-{day:02d}", str(rng.randint(0, 10**6))))
        self.pages[host][path] = (0, {}, b"")  # placeholder: reserves the path
        self.info[url] = PageInfo(url, kind, art.lang, art.text, group or url, dup)
        if listed:
            self.listing[host].append((Link(path, art.title), art.summary))
        return url

    def render_articles(self) -> None:
        for host, path, art, day, cseed in self.pending:
            style = self.styles[host]
            rng = self.rng(f"render:{host}{path}")
            others = [x for x, _ in self.listing[host] if x.href != path]
            related = rng.sample(others, min(4, len(others)))
            most_read = rng.sample(others, min(5, len(others)))
            hh, mm = rng.randint(6, 21), rng.choice([0, 15, 30, 45])
            d = datetime.strptime(day, "%Y-%m-%d")
            body = article_page(
                style,
                title=art.title,
                summary=art.summary,
                paragraphs=art.paragraphs,
                author=art.author,
                published=f"{day}T{hh:02d}:{mm:02d}:00Z",
                date_text=_date_text(d, style.lang),
                canonical=f"http://{host}{path}",
                section=style.sections[0],
                related=related,
                most_read=most_read,
                comment_seed=int(cseed),
            )
            self.pages[host][path] = (200, {"Content-Type": HTML}, body)

    def render_indexes(self) -> None:
        for host, style in self.styles.items():
            if host == WIKI_HOST:
                continue
            self.pages[host]["/"] = (
                200,
                {"Content-Type": HTML},
                index_page(style, self.listing[host][:30], f"http://{host}/"),
            )


def _date_text(d: datetime, lang: str) -> str:
    if lang == "en":
        return f"{d.day} {T.MONTHS[d.month - 1]} {d.year}"
    months = T.FOREIGN[lang]["months"]
    sep = " de " if lang == "es" else " "
    return f"{d.day}{'.' if lang == 'de' else ''} {months[d.month - 1]}{sep}{d.year}".replace(
        "  ", " "
    )


def _file_bytes(kind: str, label: str) -> tuple[str, bytes]:
    """Small binary-looking payloads with a non-HTML content type."""
    if kind == "pdf":
        body = (
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
            + f"% {label}\n".encode()
            + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
        )
        return "application/pdf", body
    if kind == "xlsx":
        return (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            b"PK\x03\x04\x14\x00\x06\x00" + label.encode() + b"\x00" * 32,
        )
    return "audio/mpeg", b"ID3\x03\x00\x00\x00\x00\x00\x0f" + label.encode() + b"\xff\xfb" * 16


def _build_web(b: _Builder) -> dict[str, list[str]]:
    """Create every page; return the link lists per trap (URLs submissions will point to)."""
    links: dict[str, list[str]] = {
        k: []
        for k in (
            "regular",
            "low_karma",
            "exact_duplicate",
            "near_duplicate",
            "too_short",
            "wrong_language",
            "wikipedia",
            "robots",
            "http_4xx",
            "bad_content_type",
            "redirect",
        )
    }

    # Regular English articles: the corpus.
    originals: dict[str, list[str]] = {h: [] for h in ENGLISH_HOSTS}
    for host in ENGLISH_HOSTS:
        for i in range(N_REGULAR_PER_SITE):
            rng = b.rng(f"article:{host}:{i}")
            art = T.english_article(rng, rng.choice(b.topics[host]))
            url = b.add_article(host, art, rng)
            links["regular"].append(url)
            originals[host].append(url)

    # Articles only linked by low-karma posts: they exist but should never be crawled.
    for i in range(N_LOW_KARMA):
        rng = b.rng(f"lowkarma:{i}")
        host = ENGLISH_HOSTS[i % len(ENGLISH_HOSTS)]
        art = T.english_article(rng, rng.choice(b.topics[host]))
        links["low_karma"].append(b.add_article(host, art, rng))

    # Exact duplicates: the same article at a second URL (a legacy /story/ path on the same
    # site, or syndicated to a sister site with the same layout).
    for i in range(N_EXACT):
        rng = b.rng(f"exact:{i}")
        host = ENGLISH_HOSTS[(2 * i) % len(ENGLISH_HOSTS)]
        orig = originals[host][i]
        art = _article_of(b, orig)
        if i % 2 == 0:
            target, path = host, b.unique_path(host, f"/story/{rng.randint(100000, 999999)}")
        else:
            same = [
                h
                for h in ENGLISH_HOSTS
                if h != host and b.styles[h].layout == b.styles[host].layout
            ]
            target, path = rng.choice(same), None
        links["exact_duplicate"].append(
            b.add_article(target, art, rng, path=path, dup="exact", group=orig, listed=False)
        )

    # Near duplicates: a revised copy (a few words changed, an update paragraph added).
    for i in range(N_NEAR):
        rng = b.rng(f"near:{i}")
        host = ENGLISH_HOSTS[(2 * i + 1) % len(ENGLISH_HOSTS)]
        orig = originals[host][N_EXACT + i]
        art = T.near_duplicate(rng, _article_of(b, orig), variant=i % 2)
        path = b.unique_path(host, _path_of(orig) + "-updated")
        links["near_duplicate"].append(
            b.add_article(host, art, rng, path=path, dup="near", group=orig, listed=False)
        )

    # News briefs below the minimum length.
    for i in range(N_SHORT):
        rng = b.rng(f"short:{i}")
        host = ENGLISH_HOSTS[(3 * i) % len(ENGLISH_HOSTS)]
        art = T.short_article(rng, rng.choice(b.topics[host]))
        slug = "-".join(_slug(art.title).split("-")[:7])
        links["too_short"].append(
            b.add_article(host, art, rng, kind="short", path=b.unique_path(host, f"/briefs/{slug}"))
        )

    # Pages in German, French and Spanish.
    for host, _, _, lang, *_ in SITES:
        if lang == "en":
            continue
        for i in range(N_FOREIGN_PER_LANG):
            rng = b.rng(f"foreign:{host}:{i}")
            art = T.foreign_article(rng, lang)
            links["wrong_language"].append(b.add_article(host, art, rng, kind="foreign"))

    # Wikipedia-like articles.
    wiki = b.styles[WIKI_HOST]
    titles = []
    for i in range(N_WIKI):
        rng = b.rng(f"wiki:{i}")
        title, sections = T.wiki_article(rng)
        while f"/wiki/{title}" in b.pages[WIKI_HOST]:
            title += "_(town)"
        path = f"/wiki/{title}"
        titles.append(title)
        b.pages[WIKI_HOST][path] = (0, {}, b"")
        text = "\n\n".join(p for _, ps in sections for p in ps)
        url = f"http://{WIKI_HOST}{path}"
        b.info[url] = PageInfo(url, "wiki", "en", text, url)
        b.info[url + "#sections"] = PageInfo(url, "wiki-sections", "en", json.dumps(sections))
        links["wikipedia"].append(url)
    for i, title in enumerate(titles):
        url = f"http://{WIKI_HOST}/wiki/{title}"
        sections = json.loads(b.info.pop(url + "#sections").text)
        see = [Link(f"/wiki/{t}", t) for t in titles if t != title][:4]
        b.pages[WIKI_HOST][f"/wiki/{title}"] = (
            200,
            {"Content-Type": HTML},
            wiki_page(
                wiki,
                title=title,
                sections=[(h, ps) for h, ps in sections],
                canonical=url,
                edited=f"{3 + i} June 2017, at 1{i % 10}:2{i % 6}",
                see_also=see,
            ),
        )
    b.pages[WIKI_HOST]["/wiki/Main_Page"] = (
        200,
        {"Content-Type": HTML},
        wiki_page(
            wiki,
            title="Main Page",
            sections=[("", ["Welcome to the demo encyclopedia."])],
            canonical=f"http://{WIKI_HOST}/wiki/Main_Page",
            edited="1 June 2017, at 00:00",
            see_also=[Link(f"/wiki/{t}", t) for t in titles],
        ),
    )

    # Pages behind a robots.txt Disallow (members-only area of one site).
    for i in range(N_ROBOTS):
        rng = b.rng(f"robots:{i}")
        art = T.english_article(rng, "city")
        slug = "-".join(_slug(art.title).split("-")[:8])
        path = b.unique_path(ROBOTS_HOST, f"{ROBOTS_PATH}{slug}")
        links["robots"].append(b.add_article(ROBOTS_HOST, art, rng, path=path, listed=False))

    # Links to pages that do not exist.
    for i in range(N_MISSING):
        rng = b.rng(f"missing:{i}")
        host = ENGLISH_HOSTS[(5 * i + 2) % len(ENGLISH_HOSTS)]
        path = (
            f"/{rng.choice(['news', 'archive', '2016/11', 'blog'])}/"
            f"{'-'.join(_slug(T.english_article(rng, b.topics[host][0]).title).split('-')[:6])}"
        )
        path = b.unique_path(host, path)
        links["http_4xx"].append(f"http://{host}{path}")

    # Non-HTML files at URLs without a file extension.
    for i, (host, path, kind) in enumerate(
        [
            ("www.daily-ledger.test", "/files/report", "pdf"),
            ("www.marketwire-weekly.test", "/downloads/q2-figures", "xlsx"),
            ("news.harbor-times.test", "/media/podcast-episode-12", "mp3"),
        ]
    ):
        ctype, body = _file_bytes(kind, f"demo file {i}")
        b.pages[host][path] = (200, {"Content-Type": ctype}, body)
        url = f"http://{host}{path}"
        b.info[url] = PageInfo(url, "file", "")
        links["bad_content_type"].append(url)

    # Redirects to articles that exist (and are not linked directly).
    for i, (host, src, code) in enumerate(
        [
            ("www.daily-ledger.test", "/go/council-budget", 301),
            ("blog.quietcompiler.test", "/p/4821", 302),
        ]
    ):
        rng = b.rng(f"redirect:{i}")
        art = T.english_article(rng, b.topics[host][0])
        target = b.add_article(host, art, rng)
        b.pages[host][src] = (
            code,
            {"Location": target, "Content-Type": HTML},
            f'<html><body>Moved to <a href="{target}">{target}</a></body></html>'.encode(),
        )
        url = f"http://{host}{src}"
        b.info[url] = PageInfo(url, "redirect", "en", group=target)
        links["redirect"].append(url)

    # Dead links: articles that existed in 2017 (rendered like the others, then taken off the
    # live web by _kill_dead_links).
    links["dead"] = []
    for i, (host, _live, _archive) in enumerate(DEAD_LINKS):
        rng = b.rng(f"dead:{i}")
        art = T.english_article(rng, b.topics[host][0])
        links["dead"].append(b.add_article(host, art, rng, listed=False))

    _plant_eval_lines(b, [originals[ENGLISH_HOSTS[i]][-1] for i, _ in EVAL_PLANTS])
    b.render_articles()
    b.render_indexes()
    return links


PARKED_PAGE = (
    b"<!DOCTYPE html><html><head><title>cityscope-daily.test is for sale</title></head>"
    b"<body><h1>This domain is for sale!</h1><p>Buy this domain today: secure checkout, fast"
    b" transfer.</p><p>Related searches: city news, local events, weather</p></body></html>"
)


def _kill_dead_links(b: _Builder, urls: list[str]) -> tuple[FakeArchive, dict[str, Any]]:
    """Take the dead links' pages off the live web, archive their 2017 copies."""
    fake = FakeArchive(base=f"http://{CC_INDEX_HOST}", wayback_base=f"http://{WAYBACK_HOST}")
    for crawl, (start, end) in CC_CRAWLS.items():
        fake.add_crawl(crawl, start, end)
    dead: dict[str, tuple[str, str | None]] = {}
    for i, (url, (host, live, archive)) in enumerate(zip(urls, DEAD_LINKS, strict=True)):
        path = _path_of(url)
        page = b.pages[host][path]
        dead[url] = (live, archive)
        b.info[url].kind = "archived"  # its 2017 text lives in the archives only
        rng = b.rng(f"dead-capture:{i}")
        day = f"201706{rng.randint(1, 30):02d}{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}00"
        if archive == "wayback":
            fake.add_wayback(url, Snapshot(day, page[2]))
            fake.add_wayback(url, Snapshot("20210301120000", PARKED_PAGE))  # far from the post
        elif archive == "commoncrawl":
            fake.add_cc("CC-MAIN-2017-26", url, day, page[2])
            fake.add_cc("CC-MAIN-2021-10", url, "20210301120000", PARKED_PAGE)
        elif archive == "pdf":
            ctype, body = _file_bytes("pdf", f"archived copy {i}")
            fake.add_wayback(url, Snapshot(day, body, ctype))
        if live == "404":
            del b.pages[host][path]
        elif live == "410":
            b.pages[host][path] = (410, {"Content-Type": HTML}, not_found_page(b.styles[host]))
        elif live == "soft404":
            b.pages[host][path] = (200, {"Content-Type": HTML}, not_found_page(b.styles[host]))
        elif live == "landing":
            b.pages[host][path] = (301, {"Location": f"http://{host}/"}, b"")
    # The parked domain answers every path with its parking page.
    for path in list(b.pages[PARKED_HOST]):
        b.pages[PARKED_HOST][path] = (200, {"Content-Type": HTML}, PARKED_PAGE)
    return fake, dead


def _words(text: str) -> list[str]:
    """GPT-2's audit normalization (lower case, alphanumeric runs), for the expected figures."""
    return re.findall(r"[^\W_]+", text.lower())


def _grams(text: str, n: int = EVAL_NGRAM) -> set[tuple[str, ...]]:
    grams: set[tuple[str, ...]] = set()
    for line in text.splitlines():
        w = _words(line)
        grams.update(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    return grams


def _plant_eval_lines(b: _Builder, targets: list[str]) -> None:
    """Draw the evaluation set (b.eval_lines) and plant some of its lines into `targets`.

    Every line shares no 8-gram with another line nor with any text of the web (article
    paragraphs, titles, standfirsts, comments, Wikipedia pages): a candidate that does is
    drawn again. So the audit finds exactly the planted lines, and only in their pages.
    """
    web_grams: set[tuple[str, ...]] = set()
    for _, _, art, *_ in b.pending:
        for text in (art.title, art.summary, *art.paragraphs):
            web_grams |= _grams(text)
    for info in b.info.values():
        web_grams |= _grams(info.text)
    for name, comment in COMMENTS:
        web_grams |= _grams(f"{name} says: {comment}")
    rng = b.rng("evalset")
    taken: set[tuple[str, ...]] = set()
    for _ in range(100 * N_EVAL):
        if len(b.eval_lines) == N_EVAL:
            break
        line = T.eval_passage(rng)
        grams = _grams(line)
        if grams and not grams & taken and not grams & web_grams:
            b.eval_lines.append(line)
            taken |= grams
    if len(b.eval_lines) < N_EVAL:
        raise RuntimeError("demo: could not draw an evaluation set without shared 8-grams")
    chosen = sorted(rng.sample(range(N_EVAL), sum(k for _, k in EVAL_PLANTS)))
    for url, (_, k) in zip(targets, EVAL_PLANTS, strict=True):
        lines, chosen = chosen[:k], chosen[k:]
        b.eval_planted[url] = [i + 1 for i in lines]  # line numbers in the file
        i = next(i for i, p in enumerate(b.pending) if f"http://{p[0]}{p[1]}" == url)
        host, path, art, day, cseed = b.pending[i]
        mid = len(art.paragraphs) // 2
        paragraphs = art.paragraphs[:mid] + [b.eval_lines[j] for j in lines] + art.paragraphs[mid:]
        art = dataclasses.replace(art, paragraphs=paragraphs)
        b.pending[i] = (host, path, art, day, cseed)
        b.info[url].text = art.text


def _article_of(b: _Builder, url: str) -> T.Article:
    for host, path, art, *_ in b.pending:
        if f"http://{host}{path}" == url:
            return art
    raise KeyError(url)


def _path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _robots(b: _Builder) -> dict[str, str]:
    robots = {}
    for host in b.styles:
        if host == "www.greenfork-kitchen.test":
            continue  # one site has no robots.txt at all: the crawler must treat 404 as allow-all
        lines = ["User-agent: *", "Disallow: /search", "Disallow: /login", "Disallow: /comment"]
        if host == ROBOTS_HOST:
            lines.append(f"Disallow: {ROBOTS_PATH}")
        if host == WIKI_HOST:
            lines = ["User-agent: *", "Disallow: /w/", "Disallow: /wiki/Special:"]
        lines += ["", f"Sitemap: http://{host}/sitemap.xml"]
        robots[host] = "\n".join(lines) + "\n"
    return robots


# --------------------------------------------------------------------------------------------
# The submission dump
# --------------------------------------------------------------------------------------------

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n, 36)
        s = _B36[r] + s
    return s or "0"


def _karma(rng: random.Random) -> int:
    # Heavy-tailed, like Reddit scores: most posts modest, a few very high.
    return min(25000, 3 + int(rng.paretovariate(1.1) * 4))


def _submissions(b: _Builder, links: dict[str, list[str]]) -> list[dict[str, Any]]:
    rng = b.rng("submissions")
    posts: list[dict[str, Any]] = []

    def topic_of(url: str) -> str:
        host = url.split("/")[2]
        info = b.info.get(url)
        if host == WIKI_HOST:
            return "wiki"
        if info is not None and info.lang in ("de", "fr", "es"):
            return info.lang
        return b.topics.get(host, ("city",))[0] if b.topics.get(host) else "city"

    def title_of(url: str) -> str:
        for host, path, art, *_ in b.pending:
            if f"http://{host}{path}" == url:
                return art.title
        tail = url.rstrip("/").rsplit("/", 1)[-1].replace("-", " ").replace("_", " ")
        return tail[:1].upper() + tail[1:]

    def link_post(url: str, karma: int, trap: str) -> None:
        posts.append(
            {
                "url": url,
                "score": karma,
                "is_self": False,
                "trap": trap,
                "subreddit": rng.choice(SUBREDDITS[topic_of(url)]),
                "title": title_of(url),
            }
        )

    # Every trap but low_karma (posted below with its own karma), in the lists' order.
    for trap, urls in links.items():
        if trap == "low_karma":
            continue
        for url in urls:
            link_post(url, _karma(rng), trap)
    for url in links["low_karma"]:
        link_post(url, rng.choice([-2, -1, 0, 1, 1, 1, 2, 2]), "low_karma")
    # The same URL posted a second time (another subreddit, also >= 3 karma): harvest merges.
    for url in rng.sample(links["regular"], N_MERGED):
        link_post(url, _karma(rng), "merged_duplicate")
    for i in range(N_SELF):
        sub = rng.choice(
            ["AskReddit", "explainlikeimfive", "NoStupidQuestions", "learnprogramming"]
        )
        q = T.english_article(b.rng(f"self:{i}"), rng.choice(list(T.TOPICS)))
        posts.append(
            {
                "url": None,
                "score": _karma(rng),
                "is_self": True,
                "trap": "self_post",
                "subreddit": sub,
                "title": f"What do you think about {q.title.lower()}?",
                "selftext": q.paragraphs[0],
            }
        )
    for i in range(N_BLOCKED):
        kind = i % 4
        token = "".join(rng.choice(_B36 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(11))
        url = [
            f"https://imgur.com/gallery/{token[:7]}",
            f"https://www.youtube.com/watch?v={token}",
            f"https://gfycat.com/{token.capitalize()}",
            f"https://i.redd.it/{token[:10].lower()}",
        ][kind]
        posts.append(
            {
                "url": url,
                "score": _karma(rng),
                "is_self": False,
                "trap": "reddit_link" if kind == 3 else "blocked_domain",
                "subreddit": rng.choice(["pics", "videos", "funny", "aww", "gifs"]),
                "title": rng.choice(
                    [
                        "Look what I found on my walk today",
                        "This made my day",
                        "My cat judging my cooking",
                        "Sunset over the harbor last night",
                        "Best goal of the season so far",
                    ]
                ),
            }
        )

    rng.shuffle(posts)
    times = sorted(rng.randint(MONTH_START, MONTH_END) for _ in posts)
    next_id = int("6ep000", 36)
    out = []
    for post, ts in zip(posts, times):
        next_id += rng.randint(3, 400)
        out.append(_pushshift(post, _b36(next_id), ts, rng))
    return out


def _pushshift(post: dict[str, Any], pid: str, ts: int, rng: random.Random) -> dict[str, Any]:
    sub = post["subreddit"]
    slug = "_".join(_slug(post["title"]).split("-")[:8])
    permalink = f"/r/{sub}/comments/{pid}/{slug}/"
    if post["is_self"]:
        url, domain = f"https://www.reddit.com{permalink}", f"self.{sub}"
    else:
        url = post["url"]
        host = url.split("/")[2]
        domain = host.removeprefix("www.")
    return {
        "archived": False,
        "author": rng.choice(T.FIRST_NAMES).lower()
        + rng.choice(["_", "", "-"])
        + str(rng.randint(1, 9999)),
        "contest_mode": False,
        "created_utc": ts,
        "domain": domain,
        "edited": False,
        "gilded": 0,
        "hidden": False,
        "id": pid,
        "is_self": post["is_self"],
        "is_video": False,
        "locked": False,
        "num_comments": max(0, post["score"] // rng.randint(3, 12)),
        "over_18": False,
        "permalink": permalink,
        "retrieved_on": ts + 86400 * 30 + rng.randint(0, 3600),
        "score": post["score"],
        "selftext": post.get("selftext", ""),
        "spoiler": False,
        "stickied": False,
        "subreddit": sub,
        "subreddit_id": "t5_" + _b36(abs(hash_str(sub)) % 36**5),
        "thumbnail": "self" if post["is_self"] else "default",
        "title": post["title"],
        "url": url,
        "_trap": post["trap"],  # removed before writing
    }


def hash_str(s: str) -> int:
    """A stable string hash (Python's hash() is salted per process)."""
    h = 0
    for ch in s.encode():
        h = (h * 131 + ch) % (1 << 61)
    return h


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return  # a rerun leaves the file (and its mtime) alone
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _write_dump(path: Path, subs: list[dict[str, Any]]) -> None:
    lines = [
        json.dumps(
            {k: v for k, v in s.items() if not k.startswith("_")},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for s in subs
    ]
    raw = ("\n".join(lines) + "\n").encode()
    # Single-threaded zstd at a fixed level: same input, same bytes.
    _write_if_changed(path, zstandard.ZstdCompressor(level=19, write_checksum=True).compress(raw))


# --------------------------------------------------------------------------------------------
# Expected funnel, derived from the generated web (not typed by hand)
# --------------------------------------------------------------------------------------------


def _fate(
    web_pages: dict[str, dict[str, Response]],
    robots: dict[str, str],
    info: dict[str, PageInfo],
    url: str,
    dead: dict[str, tuple[str, str | None]],
) -> tuple[str, str]:
    """(stage, reason) where a crawled URL ends, or ("kept", final_url): computed from the web.
    A dead link ends as its archived copy, or as the archive's failure (the demo asks both
    archives about 404s, 410s, soft 404s, parked pages and landing-page redirects)."""
    host = url.split("/")[2]
    path = _path_of(url)
    if host in robots:
        rp = urllib.robotparser.RobotFileParser()
        rp.parse(robots[host].splitlines())
        if not rp.can_fetch("webtext-crawler", url):
            return "crawl", "robots"
    if url in dead:
        archive = dead[url][1]
        if archive is None:
            return "crawl", "archive_miss"
        if archive == "pdf":
            return "crawl", "archive_bad_content_type"
        web_pages = {host: {path: (200, {"Content-Type": HTML}, b"")}}  # the archived copy
    for _ in range(5):
        resp = web_pages.get(host, {}).get(path)
        if resp is None:
            return "crawl", "archive_miss"  # a 404 with no capture in any archive
        status, headers, _ = resp
        if status in (301, 302):
            url = headers["Location"]
            host, path = url.split("/")[2], _path_of(url)
            continue
        if not headers.get("Content-Type", "").startswith("text/html"):
            return "crawl", "bad_content_type"
        break
    meta = info[url]
    if meta.lang != "en":
        return "filter", "wrong_language"
    if host == WIKI_HOST:
        return "filter", "wikipedia"
    if meta.kind == "short":
        return "filter", "too_short"
    return "kept", url


def _under(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def _expected(
    b: _Builder,
    robots: dict[str, str],
    subs: list[dict[str, Any]],
    dead: dict[str, tuple[str, str | None]],
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    # The harvest's rules as configured by default, applied in its order: self post, karma,
    # links back into Reddit (i.redd.it is Reddit's own image host), blocked hosts.
    rules = HarvestConfig.model_validate({})
    blocked = tuple(d.lower() for d in rules.blocked_domains)
    reddit = ("reddit.com", "redd.it")
    harvest: Counter[str] = Counter()
    kept_urls: list[str] = []
    for s in subs:
        host = "" if s["is_self"] else s["url"].split("/")[2].lower()
        if s["is_self"]:
            harvest["self_post"] += 1
        elif s["score"] < rules.min_karma:
            harvest["low_karma"] += 1
        elif getattr(rules, "drop_reddit_links", True) and _under(host, reddit):
            harvest["reddit_link"] += 1
        elif _under(host, blocked):
            harvest["blocked_domain"] += 1
        else:
            kept_urls.append(s["url"])
    unique = sorted(set(kept_urls))
    harvest["merged_duplicate"] = len(kept_urls) - len(unique)

    later: dict[str, Counter[str]] = {"crawl": Counter(), "filter": Counter(), "dedup": Counter()}
    survivors: list[str] = []
    for url in unique:
        stage, what = _fate(b.pages, robots, b.info, url, dead)
        if stage == "kept":
            survivors.append(what)
        else:
            later[stage][what] += 1
    # Dedup: exact copies share text; near copies share a group with different text.
    by_group: dict[str, list[PageInfo]] = {}
    for url in survivors:
        by_group.setdefault(b.info[url].group, []).append(b.info[url])
    sources: Counter[str] = Counter()
    for members in by_group.values():
        # Archived copies are articles of their own: a group is all live or one archived page.
        kinds = {(dead.get(m.url) or ("", "live"))[1] for m in members}
        assert len(kinds) == 1, kinds
        sources[str(kinds.pop())] += 1
        texts = Counter(m.text for m in members)
        later["dedup"]["exact_duplicate"] += sum(n - 1 for n in texts.values())
        later["dedup"]["near_duplicate"] += len(texts) - 1
    expected = {"harvest": dict(sorted(harvest.items()))}
    expected.update({k: dict(sorted(v.items())) for k, v in later.items()})
    return expected, dict(sorted(sources.items()))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def generate(out_dir: Path, seed: int = 0) -> DemoWeb:
    """Build the demo web; write out_dir/input/RS_demo-2017-06.zst and the evaluation set
    out_dir/input/evalsets/demo_eval.txt. Same seed, same bytes."""
    out_dir = Path(out_dir)
    b = _Builder(seed)
    links = _build_web(b)
    archive, dead = _kill_dead_links(b, links["dead"])
    robots = _robots(b)
    subs = _submissions(b, links)
    dump = out_dir / "input" / DUMP_NAME
    _write_dump(dump, subs)
    by_stage, sources = _expected(b, robots, subs, dead)
    expected = {r: n for reasons in by_stage.values() for r, n in reasons.items()}
    expected["shards"] = sum(sources.values())
    pages = {h: dict(sorted(p.items())) for h, p in sorted(b.pages.items())}
    eval_path = out_dir / "input" / EVAL_DIR / EVAL_NAME
    _write_if_changed(eval_path, ("\n".join(b.eval_lines) + "\n").encode())
    planted = sorted(n for lines in b.eval_planted.values() for n in lines)
    all_grams = [_grams(line) for line in b.eval_lines]
    expected_overlap = {
        "examples": len(b.eval_lines),
        "examples_with_overlap": len(planted),
        "ngrams": len(set().union(*all_grams)),
        "ngrams_found": len(set().union(*(all_grams[n - 1] for n in planted))),
    }
    return DemoWeb(
        out_dir=out_dir,
        seed=seed,
        pages=pages,
        robots=robots,
        hosts=sorted(pages),
        dump_path=dump,
        expected=expected,
        expected_by_stage=by_stage,
        info=b.info,
        links={k: list(v) for k, v in links.items()},
        not_found={h: not_found_page(s) for h, s in sorted(b.styles.items())},
        submissions=[{k: v for k, v in s.items() if not k.startswith("_")} for s in subs],
        eval_path=eval_path,
        eval_lines=list(b.eval_lines),
        eval_planted=dict(b.eval_planted),
        expected_overlap=expected_overlap,
        archive=archive,
        dead=dead,
        expected_sources=sources,
    )


def demo_config(out_dir: Path, web: DemoWeb, proxy_url: str) -> dict[str, Any]:
    """Partial corpus config for the demo (keys as in pipeline/core/config.py)."""
    return {
        "name": "demo",
        "out_dir": str(out_dir),
        "harvest": {
            "inputs": [str(web.dump_path)],
            "n_parts": 4,
            "start_date": "2017-01-01",
            "end_date": "2017-12-31",
        },
        "crawl": {
            "proxy": proxy_url,
            "allow_hosts": [*web.hosts, *ARCHIVE_HOSTS],
            "autothrottle": False,
            "download_delay": 0.0,
            "download_timeout": 10.0,
            "retry_times": 1,
            "concurrent_requests": 16,
            "concurrent_per_domain": 8,
            "archive": {
                "sources": ["wayback", "commoncrawl"],
                "wayback_cdx": f"http://{WAYBACK_HOST}/cdx/search/cdx",
                "wayback_raw": f"http://{WAYBACK_HOST}/web/{{timestamp}}id_/{{url}}",
                "commoncrawl_collinfo": f"http://{CC_INDEX_HOST}/collinfo.json",
                "commoncrawl_data": f"http://{CC_DATA_HOST}/",
                # Local fake archives: no need for the real ones' politeness.
                "rate_wayback": 50.0,
                "rate_commoncrawl": 50.0,
                "retries": 1,
                "backoff": 0.1,
            },
        },
        "shards": {"include_text": True, "val_fraction": 0.05, "max_rows_per_shard": 64},
        "overlap": {"eval_sets": {"demo": str(web.eval_path)}},
    }
