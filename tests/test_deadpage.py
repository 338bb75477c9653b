"""Soft 404s and parked domains: flagged on real-looking dead pages, never on real articles."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from pipeline.crawl.deadpage import judge_page, landing_redirects

SCRAPINGHUB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "extraction"
SCRAPINGHUB = SCRAPINGHUB / "scrapinghub" / "html"

NAV = " ".join(f'<li><a href="/s{i}">Section {i}</a></li>' for i in range(40))
FOOTER = "<footer><p>&copy; 2017 Example Media Group. All rights reserved.</p>" + (
    "<p>About us | Contact | Careers | Advertise | Privacy | Terms | Cookie settings</p></footer>"
)


def news_site_page(title: str, main: str, scripts: int = 20) -> bytes:
    """A news site's page: head with scripts and styles, navigation, main, footer."""
    head = "".join(
        f"<script>window.dataLayer=window.dataLayer||[];dl({i},'page not found tracking');</script>"
        for i in range(scripts)
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>.nav{{color:red}}</style>{head}</head><body><header><nav><ul>{NAV}</ul></nav>"
        f"</header><main>{main}</main>{FOOTER}</body></html>"
    ).encode()


DEAD = {
    "en_title": (
        news_site_page(
            "Page not found | The Daily Ledger",
            "<h1>Sorry!</h1><p>We could not find what you asked for. Try the search.</p>",
        ),
        "soft_404",
    ),
    "en_text": (
        news_site_page(
            "The Daily Ledger",
            "<h1>Oops</h1><p>The page you were looking for doesn't exist or has moved.</p>",
        ),
        "soft_404",
    ),
    "en_404_title": (b"<html><head><title>404</title></head><body>Nope.</body></html>", "soft_404"),
    "de": (
        news_site_page(
            "Tagesblick",
            "<h1>Fehler 404</h1><p>Die Seite wurde nicht gefunden. Zur&uuml;ck zur Startseite.</p>",
        ),
        "soft_404",
    ),
    "fr": (
        news_site_page(
            "Page introuvable - Le Quotidien Vert",
            "<p>D&eacute;sol&eacute;, la page que vous recherchez a &eacute;t&eacute; "
            "d&eacute;plac&eacute;e.</p>",
        ),
        "soft_404",
    ),
    "es": (
        "<html><head><meta charset='utf-8'><title>Diario del Puerto</title></head><body>"
        "<h1>Página no encontrada</h1><p>Lo sentimos, la página que buscas no existe.</p>"
        "</body></html>".encode(),
        "soft_404",
    ),
    "article_gone": (
        news_site_page(
            "Harbor Times",
            "<p>This article is no longer available.</p>",
        ),
        "soft_404",
    ),
    "parked_sale": (
        (
            b"<html><head><title>old-blog.com is for sale!</title></head><body>"
            b"<h1>This domain is for sale</h1><p>Make an offer on this domain today. "
            b"Secure transaction, fast transfer.</p><a href='https://www.hugedomains.com/'>"
            b"HugeDomains.com</a></body></html>"
        ),
        "parked",
    ),
    "parked_sedo": (
        (
            b"<html><head><title>mycoolnews.net</title><script src='//sedoparking.com/x.js'>"
            b"</script></head><body><div>mycoolnews.net</div><div>Related Searches: "
            b"<a>Cheap Flights</a> <a>Online Degree</a> <a>Car Insurance</a></div>"
            b"<p>This web page is parked FREE, courtesy of a registrar.</p></body></html>"
        ),
        "parked",
    ),
    "parked_de": (
        (
            b"<html><head><title>tagesblatt-nord.de</title></head><body>"
            b"<p>Diese Domain kaufen? Die Domain steht zum Verkauf.</p></body></html>"
        ),
        "parked",
    ),
}


@pytest.mark.parametrize("name", sorted(DEAD))
def test_dead_pages_are_flagged(name: str) -> None:
    body, reason = DEAD[name]
    got = judge_page(body)
    assert got is not None, name
    assert got[0] == reason


def test_article_mentioning_markers_is_not_flagged() -> None:
    words = " ".join(["The council met on Tuesday to discuss the budget for the harbour."] * 60)
    main = (
        f"<h1>Why the city's web archive said 'page not found'</h1><p>{words}</p>"
        "<p>Residents who searched for the minutes saw an error 404 page and a notice that "
        "this domain is for sale, the clerk said.</p>"
    )
    assert judge_page(news_site_page("Council budget row deepens", main)) is None


def test_no_real_article_is_flagged() -> None:
    files = sorted(SCRAPINGHUB.glob("*.html.gz"))
    assert len(files) == 181
    flagged = [(f.name, judge_page(gzip.decompress(f.read_bytes()))) for f in files]
    assert [x for x in flagged if x[1] is not None] == []


def _row(url: str, final: str, error: str | None = None) -> dict[str, object]:
    return {"url": url, "final_url": final, "error": error}


def test_landing_redirects_need_min_links_of_one_host() -> None:
    rows = [
        _row("http://a.test/2017/one", "http://a.test/"),
        _row("http://a.test/2017/two", "http://a.test/"),
        _row("http://a.test/2017/three", "http://a.test/"),
        _row("http://a.test/ok", "http://a.test/ok"),  # not redirected
        _row("http://b.test/x", "http://b.test/"),  # another host, one link only
        _row("http://b.test/y", "http://b.test/y2"),
        _row("http://c.test/p", "http://c.test/"),
        _row("http://c.test/q", "http://c.test/", error="http_4xx"),  # failed: not counted
    ]
    got = landing_redirects(rows, 3)
    assert sorted(got) == [
        "http://a.test/2017/one",
        "http://a.test/2017/three",
        "http://a.test/2017/two",
    ]
    assert got["http://a.test/2017/one"] == "3 links redirected to http://a.test/"
    assert landing_redirects(rows, 4) == {}
    assert landing_redirects(rows, 0) == {}
