"""URL normalization and registered domains (offline tldextract)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.harvest.urls import host_matches, normalize_url, registered_domain, url_extension


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com/a#section", "https://example.com/a"),
        ("https://twitter.com/#!/user/status/1", "https://twitter.com/#!/user/status/1"),
        ("https://e.com/a?utm_source=x&id=3&utm_medium=y&fbclid=z", "https://e.com/a?id=3"),
        ("https://e.com/a?gclid=1", "https://e.com/a"),
        ("https://e.com/a?UTM_Campaign=1&b=2", "https://e.com/a?b=2"),
        ("https://e.com/%7Euser/%41b%2fc", "https://e.com/~user/Ab%2Fc"),
        ("https://e.com/a b/ü", "https://e.com/a%20b/%C3%BC"),
        ("https://e.com/100%", "https://e.com/100%25"),
        ("https://e.com/a/./b/../c", "https://e.com/a/c"),
        ("http://e.com/?a=1&amp;b=2", "http://e.com/?a=1&b=2"),  # Reddit's HTML escaping
        ("  https://e.com/x  ", "https://e.com/x"),
        ("https://user:pw@e.com/x", "https://e.com/x"),
        ("https://EXAMPLE.com./x", "https://example.com/x"),
        ("https://bücher.de/", "https://xn--bcher-kva.de/"),
        ("http://192.168.1.1:80/x", "http://192.168.1.1/x"),
        ("http://[2001:DB8::1]:8080/", "http://[2001:db8::1]:8080/"),
        ("www.example.com/page", "http://www.example.com/page"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize_url(raw) == expected
    assert normalize_url(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ftp://e.com/x",
        "mailto:a@b.c",
        "javascript:alert(1)",
        "/r/news/comments/x",
        "http://",
        "http://exa mple.com/",
        "http://e.com:99999/",
        "http://e.com\x00/",
        None,
        42,
        "http://[::1/",
    ],
)
def test_invalid(raw: object) -> None:
    assert normalize_url(raw) is None  # type: ignore[arg-type]


def test_extra_tracking_params() -> None:
    assert normalize_url("https://e.com/?ref=rd&x=1", frozenset({"ref"})) == "https://e.com/?x=1"
    assert normalize_url("https://e.com/?ref=rd&x=1") == "https://e.com/?ref=rd&x=1"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("en.wikipedia.org", "wikipedia.org"),
        ("news.bbc.co.uk", "bbc.co.uk"),
        ("www.daily-ledger.test", "daily-ledger.test"),  # no public suffix: last two labels
        ("a.b.localhost", "b.localhost"),
        ("localhost", "localhost"),
        ("192.168.0.1", "192.168.0.1"),
        ("[2001:db8::1]", "[2001:db8::1]"),
        ("WWW.Example.COM", "example.com"),
        ("example.com:8080", "example.com"),
        ("foo.blogspot.com", "blogspot.com"),  # ICANN section only
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
    ],
)
def test_registered_domain(host: str, expected: str) -> None:
    assert registered_domain(host) == expected


def test_registered_domain_is_offline_and_writes_nothing(tmp_path: Path) -> None:
    """A fresh interpreter with no network and HOME in tmp: no cache file appears anywhere."""
    import subprocess
    import sys

    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
    }
    env.pop("TLDEXTRACT_CACHE", None)
    code = "from pipeline.harvest.urls import registered_domain as r; print(r('a.bbc.co.uk'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "bbc.co.uk"
    assert list(tmp_path.rglob("*")) == []


def test_host_matches_and_extension() -> None:
    blocked = frozenset({"imgur.com", "redd.it"})
    assert host_matches("i.imgur.com", blocked) == "imgur.com"
    assert host_matches("imgur.com", blocked) == "imgur.com"
    assert host_matches("notimgur.com", blocked) is None
    assert host_matches("github.com", blocked) is None
    assert url_extension("https://e.com/a/b.JPG") == "jpg"
    assert url_extension("https://e.com/a/b.jpg?x=1.html") == "jpg"
    assert url_extension("https://e.com/a.b/c") == ""
    assert url_extension("https://e.com/") == ""


def test_fast_split_equals_urlsplit(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The regex fast path and urllib's urlsplit give the same normal form on real URLs."""
    import json
    import lzma
    import re

    from pipeline.harvest import urls as urls_mod

    raw = lzma.decompress((shared_data / "reddit" / "RS_v2_2005-07.xz").read_bytes())
    corpus = [json.loads(line)["url"] for line in raw.splitlines()]
    corpus += [
        "HTTPS://A.B.C/x/../y?utm_source=1&q=a%2fb#frag",
        "http://e.com?x=1",
        "http://e.com#f",
        "http://e.com/a?b#c?d",
        "https://e.com/%zz",
        "http://e.com/a;b=c",
        "http://e.com/~a b",
        "http://e.com\\path",
        "http://e_x.com/",
        "http://-bad.com/",
        "http://e.com/a//b",
    ]
    fast = [normalize_url(u) for u in corpus]
    monkeypatch.setattr(urls_mod, "_SIMPLE_URL", re.compile(r"(?!)"))
    slow = [normalize_url(u) for u in corpus]
    assert fast == slow
    assert sum(1 for u in fast if u) > 1000
