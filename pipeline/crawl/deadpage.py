"""Dead pages that answer 200: soft 404s and parked domains.

Much of a 2017 link list is dead in 2026, and a dead page often does not say so with its
status: a site answers "page not found" with 200, an expired domain is parked behind a
"this domain is for sale" page, or every old article redirects to the home page. Such pages
count as dead (`soft_404`, `parked`), so they never reach the corpus and the archive fallback
(pipeline/crawl/archive.py) looks for the page as it was.

Two checks, both pure:
- `judge_page(body)`: a page whose visible text is tiny and that carries not-found markers
  (English, German, French, Spanish, Italian, Dutch, Portuguese) in its title or text, or
  domain-parking / for-sale markers. Real articles are hundreds of words long, so a marker
  inside an article ("the page was not found in the archive") never flags it: the text limits
  below are what keep the check precise (none of the 181 real pages of the Scrapinghub set is
  flagged, tests/test_deadpage.py).
- `landing_redirects(rows, min_links)`: after the live crawl of a part, `min_links` or more
  distinct links of one host that were redirected to one and the same page (a site that sends
  every missing article to its front page or a "/404" page).
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

# Pages bigger than this are never judged. Only pages up to SMALL_BODY bytes, or whose title
# carries a marker, have their text read: a soft 404 or a parking page is small, and reading
# the text of every page would cost more CPU (~2.5 ms on a 100 KB page) than the crawl itself
# spends on it (~1.2 ms).
MAX_BODY = 256 * 1024
SMALL_BODY = 48 * 1024
# A marker in the title flags a page of at most this many visible words (a news site's 404
# page keeps its navigation, footer and "most read" lists: a few hundred words).
TITLE_MAX_WORDS = 400
# A marker only in the text flags a page of at most this many words.
TEXT_MAX_WORDS = 120
# Parking pages are thin templates; a "for sale" phrase in a real page is no evidence.
PARKED_MAX_WORDS = 250

NOT_FOUND_MARKERS = (
    # en
    "page not found",
    "404 not found",
    "error 404",
    "404 error",
    "404 - not found",
    "not found (404)",
    "page cannot be found",
    "page can't be found",
    "page could not be found",
    "page you requested could not be found",
    "page you are looking for",
    "page you're looking for",
    "page you were looking for",
    "page does not exist",
    "page doesn't exist",
    "page no longer exists",
    "page has been removed",
    "article is no longer available",
    "content is no longer available",
    "this page isn't available",
    "nothing was found at this location",
    # de
    "seite nicht gefunden",
    "seite wurde nicht gefunden",
    "seite konnte nicht gefunden werden",
    "seite existiert nicht",
    "seite ist nicht mehr verfügbar",
    "fehler 404",
    "fehlerseite",
    # fr
    "page introuvable",
    "page non trouvée",
    "page non trouvee",
    "la page demandée n'existe pas",
    "cette page n'existe pas",
    "cette page n’existe pas",
    "page que vous recherchez",
    "page que vous cherchez",
    "erreur 404",
    # es
    "página no encontrada",
    "pagina no encontrada",
    "no se encontró la página",
    "no se ha encontrado la página",
    "la página que buscas",
    "la página que estás buscando",
    "la página solicitada no existe",
    "esta página no existe",
    # it, nl, pt
    "pagina non trovata",
    "pagina niet gevonden",
    "página não encontrada",
)

PARKED_MARKERS = (
    "this domain is for sale",
    "this domain may be for sale",
    "the domain is for sale",
    "domain is for sale",
    "buy this domain",
    "this domain name is for sale",
    "domain name is for sale",
    "make an offer on this domain",
    "inquire about this domain",
    "this domain has expired",
    "this domain name has expired",
    "domain has been registered",
    "parked free",
    "parked domain",
    "domain parking",
    "this web page is parked",
    "this page is parked",
    "hugedomains.com",
    "sedoparking",
    "sedo domain parking",
    "afternic",
    "bodis.com",
    "parkingcrew",
    "related searches",
    # de, fr, es
    "diese domain kaufen",
    "diese domain steht zum verkauf",
    "domain steht zum verkauf",
    "ce domaine est à vendre",
    "ce nom de domaine est à vendre",
    "este dominio está a la venta",
    "este dominio está en venta",
    "dominio en venta",
)

_HIDDEN = re.compile(
    r"<(script|style|noscript|template|svg)\b[^>]*>.*?</\1\s*>|<!--.*?-->",
    re.IGNORECASE | re.DOTALL,
)
_HEAD = re.compile(r"<head\b.*?</head\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_TITLE_404 = re.compile(r"(error )?404\b.*")


# Cheap filter before the text of a small page is read: every marker contains one of these
# (checked below), so a page without any of them in its lower-cased bytes has no marker.
# Few and specific, because each costs a scan of the page.
_ANCHORS = (
    b"404",
    b"not found",
    b"be found",
    b"was found",
    b"gefunden",
    b"t exist",
    b"longer exist",
    b"existiert nicht",
    b"existe pas",
    b"no existe",
    b"longer available",
    b"t available",
    b"verf\xc3\xbcgbar",
    b"page you",
    b"page que",
    b"page has been",
    b"fehlerseite",
    b"introuvable",
    b"non trouv",
    b"encontr",
    b"buscas",
    b"buscando",
    b"gevonden",
    b"trovata",
    b"domain",
    b"dominio",
    b"domaine",
    b"parked",
    b"sedo",
    b"afternic",
    b"bodis",
    b"parkingcrew",
    b"related searches",
)
assert all(any(a in m.encode() for a in _ANCHORS) for m in NOT_FOUND_MARKERS + PARKED_MARKERS), (
    "a marker without an anchor would never be looked for"
)


def _decode(body: bytes) -> str:
    # Markers are ASCII or Latin letters; a wrong guess between UTF-8 and cp1252 costs only the
    # accented markers of a page that is neither.
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(text)).strip().lower().replace("\u2019", "'")


def title_of(body: bytes) -> str:
    # find() on lower-cased bytes: a case-insensitive regex scans ~10x slower.
    head = body[:65536].lower()
    start = head.find(b"<title")
    if start < 0:
        return ""
    start = head.find(b">", start) + 1
    end = head.find(b"</title", start)
    if start <= 0 or end < 0:
        return ""
    return _norm(_decode(body[start:end]))


def visible_text(markup: str) -> str:
    """The text a reader sees, roughly: no head, scripts, styles or comments; tags as spaces."""
    markup = _HIDDEN.sub(" ", markup)
    markup = _HEAD.sub(" ", markup)
    return _norm(_TAG.sub(" ", markup))


def _find(text: str, markers: Iterable[str]) -> str | None:
    for m in markers:
        if m in text:
            return m
    return None


def judge_page(body: bytes) -> tuple[str, str] | None:
    """("soft_404" | "parked", detail) for a dead page served with 200, else None."""
    if not body or len(body) > MAX_BODY:
        return None
    title = title_of(body)
    title_marker = _find(title, PARKED_MARKERS) or _find(title, NOT_FOUND_MARKERS)
    if title_marker is None and not _TITLE_404.fullmatch(title):
        if len(body) > SMALL_BODY:
            return None
        lower = body.lower()
        if not any(a in lower for a in _ANCHORS):
            return None  # the common case: no marker anywhere in the bytes
    text = visible_text(_decode(body))
    words = len(text.split())
    marker = _find(title, PARKED_MARKERS) or _find(text, PARKED_MARKERS)
    if marker is not None and words <= PARKED_MAX_WORDS:
        return "parked", f"{marker!r}, {words} words"
    marker = _find(title, NOT_FOUND_MARKERS)
    if marker is not None and words <= TITLE_MAX_WORDS:
        return "soft_404", f"title {marker!r}, {words} words"
    marker = _find(text, NOT_FOUND_MARKERS)
    if marker is not None and words <= TEXT_MAX_WORDS:
        return "soft_404", f"{marker!r}, {words} words"
    if words <= TEXT_MAX_WORDS and _TITLE_404.fullmatch(title):
        return "soft_404", f"title {title[:60]!r}, {words} words"
    return None


def landing_redirects(rows: Iterable[dict[str, Any]], min_links: int) -> dict[str, str]:
    """{url: detail} of kept rows that are `min_links` or more distinct links of one host
    redirected to the same final URL (their own URL differs from it)."""
    if min_links < 2:
        return {}
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        final = r.get("final_url")
        if r.get("error") is not None or not final or final == r["url"]:
            continue
        host = (urlsplit(r["url"]).hostname or "").lower()
        groups[(host, final)].append(r["url"])
    out: dict[str, str] = {}
    for (_host, final), urls in sorted(groups.items()):
        if len(set(urls)) >= min_links:
            for u in urls:
                out[u] = f"{len(set(urls))} links redirected to {final}"
    return out
