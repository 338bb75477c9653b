"""HTML templates of the demo sites: real-looking chrome (cookie notice, navigation, related
links, comments, footer) around the article body, so extraction has something to remove.

Three page families (news, blog, magazine) plus a Wikipedia-like skin. Boilerplate strings are
localized for the German, French and Spanish sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

BOILER = {
    "en": {
        "cookie": "We use cookies to improve your experience on our site and to show you relevant "
        "advertising. By continuing to browse, you agree to our use of cookies.",
        "accept": "Accept",
        "learn": "Learn more",
        "home": "Home",
        "related": "Related stories",
        "most_read": "Most read",
        "by": "By",
        "share": "Share this article",
        "subscribe": "Subscribe",
        "login": "Sign in",
        "newsletter": "Get the best stories in your inbox every week.",
        "signup": "Sign up",
        "rights": "All rights reserved.",
        "about": "About us",
        "contact": "Contact",
        "privacy": "Privacy policy",
        "terms": "Terms of use",
        "advertise": "Advertise",
        "comments": "Comments",
        "posted": "Posted on",
        "in_": "Posted in",
        "tagged": "Tagged",
        "recent": "Recent posts",
        "archives": "Archives",
        "categories": "Categories",
        "leave": "Leave a reply",
        "not_found": "Page not found",
        "not_found_text": "Sorry, the page you were looking for does not exist or has been moved.",
        "search": "Search",
    },
    "de": {
        "cookie": "Wir verwenden Cookies, um Ihnen ein besseres Nutzungserlebnis zu bieten. Wenn "
        "Sie weitersurfen, stimmen Sie der Verwendung von Cookies zu.",
        "accept": "Zustimmen",
        "learn": "Mehr erfahren",
        "home": "Startseite",
        "related": "Mehr zum Thema",
        "most_read": "Meistgelesen",
        "by": "Von",
        "share": "Artikel teilen",
        "subscribe": "Abonnieren",
        "login": "Anmelden",
        "newsletter": "Die wichtigsten Nachrichten jeden Morgen in Ihrem Postfach.",
        "signup": "Jetzt anmelden",
        "rights": "Alle Rechte vorbehalten.",
        "about": "Über uns",
        "contact": "Kontakt",
        "privacy": "Datenschutz",
        "terms": "Impressum",
        "advertise": "Werbung",
        "comments": "Kommentare",
        "posted": "Veröffentlicht am",
        "in_": "Rubrik",
        "tagged": "Schlagworte",
        "recent": "Neueste Beiträge",
        "archives": "Archiv",
        "categories": "Rubriken",
        "leave": "Kommentar schreiben",
        "not_found": "Seite nicht gefunden",
        "not_found_text": "Die angeforderte Seite existiert leider nicht.",
        "search": "Suche",
    },
    "fr": {
        "cookie": "Nous utilisons des cookies pour améliorer votre expérience sur notre site. En "
        "poursuivant votre navigation, vous acceptez leur utilisation.",
        "accept": "J'accepte",
        "learn": "En savoir plus",
        "home": "Accueil",
        "related": "À lire aussi",
        "most_read": "Les plus lus",
        "by": "Par",
        "share": "Partager cet article",
        "subscribe": "S'abonner",
        "login": "Se connecter",
        "newsletter": "Recevez l'essentiel de l'actualité chaque matin.",
        "signup": "Je m'inscris",
        "rights": "Tous droits réservés.",
        "about": "Qui sommes-nous",
        "contact": "Contact",
        "privacy": "Confidentialité",
        "terms": "Mentions légales",
        "advertise": "Publicité",
        "comments": "Commentaires",
        "posted": "Publié le",
        "in_": "Rubrique",
        "tagged": "Mots-clés",
        "recent": "Articles récents",
        "archives": "Archives",
        "categories": "Rubriques",
        "leave": "Laisser un commentaire",
        "not_found": "Page introuvable",
        "not_found_text": "La page demandée n'existe pas ou a été déplacée.",
        "search": "Rechercher",
    },
    "es": {
        "cookie": "Utilizamos cookies para mejorar su experiencia en nuestra web. Si continúa "
        "navegando, consideramos que acepta su uso.",
        "accept": "Aceptar",
        "learn": "Más información",
        "home": "Portada",
        "related": "Noticias relacionadas",
        "most_read": "Lo más leído",
        "by": "Por",
        "share": "Compartir esta noticia",
        "subscribe": "Suscríbete",
        "login": "Iniciar sesión",
        "newsletter": "Recibe cada mañana las noticias más importantes.",
        "signup": "Suscribirme",
        "rights": "Todos los derechos reservados.",
        "about": "Quiénes somos",
        "contact": "Contacto",
        "privacy": "Política de privacidad",
        "terms": "Aviso legal",
        "advertise": "Publicidad",
        "comments": "Comentarios",
        "posted": "Publicado el",
        "in_": "Sección",
        "tagged": "Etiquetas",
        "recent": "Entradas recientes",
        "archives": "Archivo",
        "categories": "Secciones",
        "leave": "Deja un comentario",
        "not_found": "Página no encontrada",
        "not_found_text": "La página que busca no existe o ha sido trasladada.",
        "search": "Buscar",
    },
}

COMMENTS = [
    ("Mike_R", "Great write-up, thanks for sharing this."),
    ("jenny", "I was there last week and can confirm most of this."),
    ("OldTimer", "Interesting, but I think you are missing the bigger picture here."),
    ("d.k.", "Bookmarked. Looking forward to the follow-up post!"),
    ("sam_w", "Does anyone know if this applies outside the city as well?"),
]


@dataclass(frozen=True)
class SiteStyle:
    host: str
    name: str
    tagline: str
    lang: str
    layout: str  # news | blog | magazine | wiki
    sections: tuple[str, ...]


@dataclass(frozen=True)
class Link:
    href: str
    text: str


def _e(s: str) -> str:
    return escape(s, quote=True)


def _head(
    site: SiteStyle, title: str, description: str, canonical: str, published: str | None
) -> str:
    meta = [
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} | {_e(site.name)}</title>",
        f'<meta name="description" content="{_e(description)}">',
        f'<meta property="og:site_name" content="{_e(site.name)}">',
        f'<meta property="og:title" content="{_e(title)}">',
        f'<link rel="canonical" href="{_e(canonical)}">',
    ]
    if published:
        meta.append(f'<meta property="article:published_time" content="{published}">')
    meta.append('<link rel="stylesheet" href="/static/site.css">')
    return "<head>\n" + "\n".join(meta) + "\n</head>"


def _nav(site: SiteStyle, b: dict[str, str]) -> str:
    items = [f'<li><a href="/">{_e(b["home"])}</a></li>'] + [
        f'<li><a href="/{s.lower()}/">{_e(s)}</a></li>' for s in site.sections
    ]
    return '<nav class="main-nav" aria-label="Main"><ul>' + "".join(items) + "</ul></nav>"


def _cookie(b: dict[str, str]) -> str:
    return (
        f'<div id="cookie-banner" class="cookie-notice" role="dialog"><p>{_e(b["cookie"])} '
        f'<a href="/privacy">{_e(b["learn"])}</a></p><button type="button">{_e(b["accept"])}'
        "</button></div>"
    )


def _footer(site: SiteStyle, b: dict[str, str]) -> str:
    links = "".join(
        f'<li><a href="/{k}">{_e(b[k])}</a></li>'
        for k in ("about", "contact", "privacy", "terms", "advertise")
    )
    return (
        f'<footer class="site-footer"><ul class="footer-links">{links}</ul>'
        f"<p>&copy; 2017 {_e(site.name)}. {_e(b['rights'])}</p></footer>"
    )


def _link_list(cls: str, heading: str, links: list[Link], ordered: bool = False) -> str:
    tag = "ol" if ordered else "ul"
    items = "".join(f'<li><a href="{_e(x.href)}">{_e(x.text)}</a></li>' for x in links)
    return f'<aside class="{cls}"><h2>{_e(heading)}</h2><{tag}>{items}</{tag}></aside>'


def _paras(paragraphs: list[str]) -> str:
    return "\n".join(f"<p>{_e(p)}</p>" for p in paragraphs)


def article_page(
    site: SiteStyle,
    *,
    title: str,
    summary: str,
    paragraphs: list[str],
    author: str,
    published: str,
    date_text: str,
    canonical: str,
    section: str,
    related: list[Link],
    most_read: list[Link],
    comment_seed: int = 0,
) -> bytes:
    """A full HTML article page in the site's layout."""
    b = BOILER[site.lang]
    head = _head(site, title, summary, canonical, published)
    if site.layout == "news":
        body = f"""<body class="article">
{_cookie(b)}
<header class="site-header"><a class="logo" href="/">{_e(site.name)}</a>
<p class="tagline">{_e(site.tagline)}</p>
<div class="account"><a href="/subscribe">{_e(b["subscribe"])}</a> <a href="/login">{_e(b["login"])}</a></div>
{_nav(site, b)}</header>
<main id="main">
<article class="story">
<nav class="breadcrumb"><a href="/">{_e(b["home"])}</a> &rsaquo; <a href="/{section.lower()}/">{_e(section)}</a></nav>
<h1 class="headline">{_e(title)}</h1>
<p class="standfirst">{_e(summary)}</p>
<div class="byline">{_e(b["by"])} <a rel="author" href="/authors/{_slug(author)}">{_e(author)}</a> &middot; <time datetime="{published}">{_e(date_text)}</time></div>
<div class="story-body">
{_paras(paragraphs)}
</div>
<div class="share-tools"><span>{_e(b["share"])}:</span> <a href="#">Facebook</a> <a href="#">Twitter</a> <a href="#">Email</a></div>
</article>
{_link_list("related", b["related"], related)}
{_link_list("most-read", b["most_read"], most_read, ordered=True)}
</main>
{_footer(site, b)}
</body>"""
    elif site.layout == "blog":
        n_comments = 1 + comment_seed % 3
        comments = "".join(
            f'<li class="comment"><div class="comment-author"><b>{_e(n)}</b> says:</div>'
            f'<div class="comment-content"><p>{_e(c)}</p></div></li>'
            for n, c in (COMMENTS[(comment_seed + i) % len(COMMENTS)] for i in range(n_comments))
        )
        body = f"""<body class="single-post">
{_cookie(b)}
<div id="page" class="site">
<header id="masthead" class="site-header"><p class="site-title"><a href="/">{_e(site.name)}</a></p>
<p class="site-description">{_e(site.tagline)}</p>
{_nav(site, b)}</header>
<div id="content" class="site-content">
<div id="primary" class="content-area"><main id="main" class="site-main">
<article class="post type-post status-publish">
<header class="entry-header"><h1 class="entry-title">{_e(title)}</h1>
<div class="entry-meta">{_e(b["posted"])} <time class="entry-date published" datetime="{published}">{_e(date_text)}</time> {_e(b["by"].lower())} <span class="author vcard">{_e(author)}</span></div>
</header>
<div class="entry-content">
{_paras(paragraphs)}
</div>
<footer class="entry-footer"><span class="cat-links">{_e(b["in_"])} <a href="/{section.lower()}/">{_e(section)}</a></span></footer>
</article>
<div id="comments" class="comments-area"><h2 class="comments-title">{n_comments} {_e(b["comments"])}</h2>
<ol class="comment-list">{comments}</ol>
<div id="respond"><h3>{_e(b["leave"])}</h3><form action="/comment" method="post"><textarea name="comment"></textarea><button>{_e(b["leave"])}</button></form></div></div>
</main></div>
<aside id="secondary" class="widget-area">
<section class="widget"><form role="search" action="/search"><input type="search" name="s"><button>{_e(b["search"])}</button></form></section>
{_link_list("widget widget_recent_entries", b["recent"], related)}
<section class="widget widget_archive"><h2>{_e(b["archives"])}</h2><ul><li><a href="/2017/06/">June 2017</a></li><li><a href="/2017/05/">May 2017</a></li><li><a href="/2017/04/">April 2017</a></li></ul></section>
</aside>
</div>
{_footer(site, b)}
</div>
</body>"""
    else:  # magazine
        half = max(1, len(paragraphs) // 2)
        body = f"""<body class="template-article">
{_cookie(b)}
<div class="top-bar"><a href="/newsletter">{_e(b["newsletter"])}</a> <a href="/subscribe">{_e(b["subscribe"])}</a></div>
<header class="masthead"><a class="brand" href="/">{_e(site.name)}</a>
{_nav(site, b)}</header>
<main id="main-content">
<div class="article-header"><span class="kicker">{_e(section)}</span>
<h1>{_e(title)}</h1>
<h2 class="dek">{_e(summary)}</h2>
<p class="meta">{_e(b["by"])} {_e(author)} | <time datetime="{published}">{_e(date_text)}</time></p></div>
<figure class="lead-image"><img src="/images/{_slug(title)[:40]}.jpg" alt=""><figcaption>Photo: {_e(site.name)}</figcaption></figure>
<div class="article-content">
{_paras(paragraphs[:half])}
<div class="newsletter-signup"><p>{_e(b["newsletter"])}</p><form action="/newsletter"><input type="email" name="email"><button>{_e(b["signup"])}</button></form></div>
{_paras(paragraphs[half:])}
</div>
{_link_list("read-next", b["related"], related)}
</main>
{_link_list("trending", b["most_read"], most_read, ordered=True)}
{_footer(site, b)}
</body>"""
    return _doc(site.lang, head, body)


def wiki_page(
    site: SiteStyle,
    *,
    title: str,
    sections: list[tuple[str, list[str]]],
    canonical: str,
    edited: str,
    see_also: list[Link],
) -> bytes:
    """A Wikipedia-like article: sidebar, infobox-free body, edit links, navbox, footer."""
    head = _head(site, f"{title} - Wikipedia", sections[0][1][0][:150], canonical, None)
    parts = []
    for heading, paras in sections:
        if heading:
            parts.append(
                f'<h2><span class="mw-headline" id="{_e(heading)}">{_e(heading)}</span>'
                '<span class="mw-editsection">[<a href="#">edit</a>]</span></h2>'
            )
        parts.append(_paras(paras))
    see = "".join(f'<li><a href="{_e(x.href)}">{_e(x.text)}</a></li>' for x in see_also)
    body = f"""<body class="mediawiki ltr skin-vector">
<div id="mw-page-base"></div>
<div id="content" class="mw-body" role="main">
<h1 id="firstHeading" class="firstHeading">{_e(title)}</h1>
<div id="bodyContent" class="mw-body-content">
<div id="siteSub">From Wikipedia, the free encyclopedia</div>
<div id="contentSub"></div>
<div id="mw-content-text"><div class="mw-parser-output">
<div id="toc" class="toc"><h2>Contents</h2><ul>{"".join(f'<li><a href="#{_e(h)}">{_e(h)}</a></li>' for h, _ in sections if h)}</ul></div>
{chr(10).join(parts)}
<h2><span class="mw-headline" id="See_also">See also</span></h2><ul>{see}</ul>
<h2><span class="mw-headline" id="References">References</span></h2>
<div class="reflist"><ol class="references"><li>Regional survey office, annual report, 2012.</li><li>Parish records, county archive.</li></ol></div>
<div class="navbox"><b>Towns and villages of the district</b> &middot; {" &middot; ".join(_e(x.text) for x in see_also)}</div>
</div></div>
<div id="catlinks" class="catlinks">Categories: Market towns | Civil parishes | Populated places on rivers</div>
</div></div>
<div id="mw-navigation"><div id="mw-panel"><ul><li><a href="/wiki/Main_Page">Main page</a></li><li><a href="/wiki/Special:Random">Random article</a></li><li><a href="/wiki/Help:Contents">Help</a></li></ul></div>
<div id="p-search"><form action="/w/index.php"><input name="search" placeholder="Search Wikipedia"></form></div></div>
<div id="footer" role="contentinfo"><ul id="footer-info"><li id="footer-info-lastmod">This page was last edited on {_e(edited)}.</li></ul>
<ul id="footer-places"><li><a href="/wiki/Privacy_policy">Privacy policy</a></li><li><a href="/wiki/About">About Wikipedia</a></li><li><a href="/wiki/Disclaimers">Disclaimers</a></li></ul></div>
</body>"""
    return _doc("en", head, body)


def index_page(site: SiteStyle, links: list[tuple[Link, str]], canonical: str) -> bytes:
    """Home page: the latest articles with their summaries."""
    b = BOILER[site.lang]
    head = _head(site, site.tagline, site.tagline, canonical, None)
    items = "\n".join(
        f'<li class="teaser"><h3><a href="{_e(x.href)}">{_e(x.text)}</a></h3><p>{_e(s)}</p></li>'
        for x, s in links
    )
    body = f"""<body class="home">
{_cookie(b)}
<header class="site-header"><a class="logo" href="/">{_e(site.name)}</a><p class="tagline">{_e(site.tagline)}</p>
{_nav(site, b)}</header>
<main id="main"><ul class="teasers">
{items}
</ul></main>
{_footer(site, b)}
</body>"""
    return _doc(site.lang, head, body)


def not_found_page(site: SiteStyle | None) -> bytes:
    if site is None:
        return b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n"
    b = BOILER[site.lang]
    head = _head(site, b["not_found"], b["not_found"], f"http://{site.host}/", None)
    body = f"""<body class="error404">
<header class="site-header"><a class="logo" href="/">{_e(site.name)}</a>{_nav(site, b)}</header>
<main id="main"><h1>{_e(b["not_found"])}</h1><p>{_e(b["not_found_text"])}</p></main>
{_footer(site, b)}
</body>"""
    return _doc(site.lang, head, body)


def _doc(lang: str, head: str, body: str) -> bytes:
    return f'<!DOCTYPE html>\n<html lang="{lang}">\n{head}\n{body}\n</html>\n'.encode()


def _slug(text: str) -> str:
    out = []
    for ch in text.lower():
        out.append(ch if ch.isascii() and ch.isalnum() else "-")
    return "-".join(w for w in "".join(out).split("-") if w)
