"""URL normalization and registered domains.

`normalize_url` gives every link one canonical spelling so that one URL becomes one links row:
scheme and host lower case, default ports and fragments dropped, tracking parameters removed,
percent-encoding made canonical (unreserved characters decoded, other escapes upper case,
non-ASCII and spaces encoded). It never fetches anything and is a pure function.

`registered_domain` uses tldextract's bundled Public Suffix List snapshot, strictly offline:
no suffix-list URLs and no disk cache, so it neither touches the network nor writes files.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import urlsplit

import tldextract

# Query parameters that only track the click: dropping them merges copies of the same page.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gclsrc",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wickedid",
        "ncid",
        "cmpid",
        "s_cid",
        "__twitter_impression",
        "rb_clickid",
        "spm",
        "share_id",
        "ref_src",
        "ref_url",
        "trk",
        "trkcampaign",
        "sc_campaign",
        "sc_channel",
        "sc_content",
        "sc_medium",
        "sc_outcome",
        "sc_geo",
        "sc_country",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "hmb_", "ga_")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PCT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_STRAY_PCT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_RE = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\Z")
# Bytes allowed as-is in a path or query (RFC 3986 pchar plus "/" and "?"); '%' stays because
# existing escapes were already made canonical.
_PATH_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%"
)
_QUERY_SAFE = _PATH_SAFE | frozenset(b"?")
_HEX = "0123456789ABCDEF"
# The same sets as regexes: one C-level scan decides whether a string needs encoding at all.
_UNSAFE_PATH = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]")
_UNSAFE_QUERY = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/%?]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SIMPLE_URL = re.compile(
    r"(?i:(https?))://([^/?#@:\[\]\\]+)((?:/[^?#]*)?)(?:\?([^#]*))?(?:#(.*))?\Z", re.DOTALL
)


def _pct_repl(m: re.Match[str]) -> str:
    code = int(m.group(1), 16)
    if code in _UNRESERVED:
        return chr(code)
    return "%" + m.group(1).upper()


def _encode(text: str, safe: frozenset[int]) -> str:
    """Percent-encode what is not allowed unescaped; make existing escapes canonical."""
    if "%" in text:
        text = _STRAY_PCT_RE.sub("%25", text)
        text = _PCT_RE.sub(_pct_repl, text)
    if not (_UNSAFE_QUERY if safe is _QUERY_SAFE else _UNSAFE_PATH).search(text):
        return text
    out = []
    for b in text.encode("utf-8", "surrogatepass"):
        out.append(chr(b) if b in safe else "%" + _HEX[b >> 4] + _HEX[b & 15])
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, so /a/./b/../c and /a/c are one URL."""
    if "/." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        if seg == ".":
            if i == len(segments) - 1:
                out.append("")
            continue
        if seg == "..":
            if len(out) > 1:
                out.pop()
            if i == len(segments) - 1:
                out.append("")
            continue
        out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def _is_tracking(name: str, extra: frozenset[str]) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES) or low in extra


def _normalize_query(query: str, extra: frozenset[str]) -> str:
    if not query:
        return ""
    kept = [p for p in query.split("&") if p and not _is_tracking(p.split("=", 1)[0], extra)]
    return _encode("&".join(kept), _QUERY_SAFE)


@lru_cache(maxsize=1 << 16)  # pure; hosts repeat heavily in dumps
def normalize_host(host: str) -> str | None:
    """Lower case, no trailing dot, IDNA (punycode) for non-ASCII; None when invalid.
    IPv6 literals keep their brackets; IPv4 literals stay as they are."""
    host = host.strip().lower().rstrip(".")
    if not host:
        return None
    if host.startswith("["):
        if not host.endswith("]"):
            return None
        try:
            return "[" + ipaddress.IPv6Address(host[1:-1]).compressed + "]"
        except ValueError:
            return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if len(host) > 253 or not _HOST_RE.match(host):
        return None
    return host


def normalize_url(url: str, extra_params: frozenset[str] = frozenset()) -> str | None:
    """Canonical http(s) URL, or None when the string is not a usable http(s) URL.

    `extra_params`: lower-case query parameter names to strip besides TRACKING_PARAMS."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url:
        return None
    if "&amp;" in url or "&lt;" in url or "&gt;" in url:
        # Reddit's JSON (and so every Pushshift dump) HTML-escapes these in URLs.
        url = url.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    # Browsers drop tabs and newlines inside URLs; any other control character is invalid.
    if _CONTROL.search(url):
        url = url.replace("\t", "").replace("\r", "").replace("\n", "")
        if _CONTROL.search(url):
            return None
    if "://" not in url[:12] and url.lower().startswith("www."):
        url = "http://" + url
    m = _SIMPLE_URL.match(url) if url.isascii() else None
    if m is not None:
        # The common case (ASCII, plain host, no port or credentials): the same split as
        # urlsplit, without its cost.
        scheme, raw_host, path, query, fragment = m.group(1, 2, 3, 4, 5)
        scheme = scheme.lower()
        port = None
        query = query or ""
        fragment = fragment or ""
    else:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            return None
        netloc = parts.netloc.rsplit("@", 1)[-1]  # credentials never belong in a crawl list
        if netloc.startswith("["):
            raw_host = netloc[: netloc.find("]") + 1]
        else:
            raw_host = netloc.rsplit(":", 1)[0] if ":" in netloc else netloc
        path, query, fragment = parts.path, parts.query, parts.fragment
    host = normalize_host(raw_host)
    if host is None:
        return None
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    path = _remove_dot_segments(_encode(path, _PATH_SAFE)) if path else "/"
    query = _normalize_query(query, extra_params)
    # "#!" (AJAX crawling scheme, old Twitter) carries the page itself: keep it; drop the rest.
    fragment = _encode(fragment, _QUERY_SAFE) if fragment.startswith("!") else ""
    url = f"{scheme}://{host}{path}"
    if query:
        url = f"{url}?{query}"
    return f"{url}#{fragment}" if fragment else url


def url_host(normalized: str) -> str:
    """Host (without port) of a URL produced by normalize_url."""
    netloc = normalized.split("/", 3)[2]
    if netloc.startswith("["):
        return netloc[: netloc.find("]") + 1]
    return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc


_EXTRACT = tldextract.TLDExtract(
    cache_dir=None,  # no disk cache: nothing written anywhere
    suffix_list_urls=(),  # never fetch: the snapshot bundled with the installed version only
    fallback_to_snapshot=True,
)


def _is_ip(host: str) -> bool:
    if host.startswith("["):
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


# A pure function of its argument (the suffix list is the fixed bundled snapshot), so caching
# it cannot change results; hosts repeat heavily in dumps.
@lru_cache(maxsize=1 << 16)
def registered_domain(host: str) -> str:
    """Registered domain (eTLD+1) of a host: news.bbc.co.uk -> bbc.co.uk.

    IP literals are returned as they are; hosts without a known public suffix (e.g. *.test,
    localhost) fall back to their last two labels.
    """
    host = host.lower().rstrip(".")
    if ":" in host and not host.startswith("["):
        host = host.rsplit(":", 1)[0]
    if not host or _is_ip(host):
        return host
    result = _EXTRACT(host)
    if result.suffix and result.domain:
        return f"{result.domain}.{result.suffix}"
    labels = host.split(".")
    return ".".join(labels[-2:])


def host_matches(host: str, domains: frozenset[str] | set[str]) -> str | None:
    """The entry of `domains` that `host` equals or is a subdomain of, or None."""
    if host in domains:
        return host
    pos = host.find(".")
    while pos != -1:
        suffix = host[pos + 1 :]
        if suffix in domains:
            return suffix
        pos = host.find(".", pos + 1)
    return None


def url_extension(normalized: str) -> str:
    """Lower-case extension of the last path segment ('' when none): /a/b.JPG -> 'jpg'."""
    rest = normalized.split("/", 3)
    path = "/" + rest[3] if len(rest) > 3 else "/"
    path = path.split("?", 1)[0].split("#", 1)[0]
    last = path.rsplit("/", 1)[-1]
    dot = last.rfind(".")
    if dot == -1:
        return ""
    return last[dot + 1 :].lower()
