"""Bad input never crashes a part: each page becomes a document or one ledger row."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import extract
from pipeline.core.config import CorpusConfig
from pipeline.extract.warc import DecodeError, decode_html
from tests.conftest import RANKS_FILE
from tests.test_extract_fixtures import ENGLISH_PARAS, Page, article_html, write_crawl

GOOD = article_html("Good page", ENGLISH_PARAS)
# 10 MB of tags nested two million deep: libxml2 stops at its depth limit
NESTED = b"<html><body>" + b"<div>" * 2_000_000 + b"text"
# 10 MB of flat paragraphs: parses, but extraction would take ~30 s; the cap stops it
FLAT = b"<html><body>" + b"<p>Some text here that repeats.</p>" * 280_000


def _cfg(root: Path, **extract: object) -> CorpusConfig:
    data: dict = {"out_dir": str(root), "extract": extract}
    if RANKS_FILE.exists():
        data["tokenizer"] = {"ranks_file": str(RANKS_FILE)}
    return CorpusConfig.model_validate(data)


def _run(tmp_path: Path, pages: list[Page], **extract_cfg: object) -> tuple[dict, dict]:
    links, fetches = write_crawl(tmp_path, pages)
    stats = extract.run_part(links, fetches, tmp_path, _cfg(tmp_path, **extract_cfg))
    stats.check()
    docs = {
        r["url"]: r for r in pq.read_table(tmp_path / "docs" / "part-00000.parquet").to_pylist()
    }
    ledger = {
        r["key"]: r["reason"]
        for r in pq.read_table(tmp_path / "ledger" / "extract" / "part-00000.parquet").to_pylist()
    }
    assert len(docs) + len(ledger) == stats.n_in == len(pages)
    return docs, ledger


def test_bad_pages_become_rows(tmp_path: Path) -> None:
    # a UTF-8 page (with some accents) and one stray invalid byte
    invalid_utf8 = GOOD.replace("three years", "trois années \udcff très").encode(
        "utf-8", "surrogateescape"
    )
    pages = [
        Page("https://a.example.com/empty", b""),
        Page("https://a.example.com/whitespace", b"  \r\n "),
        Page(
            "https://a.example.com/png",
            b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64,
            content_type="text/html",
        ),
        Page("https://a.example.com/gzip", gzip.compress(GOOD.encode()), content_type="text/html"),
        Page("https://a.example.com/nested", NESTED),
        Page("https://a.example.com/invalid-utf8", invalid_utf8),
        Page(
            "https://a.example.com/bogus-charset",
            GOOD.encode(),
            content_type="text/html; charset=x-no-such-codec",
        ),
        Page("https://a.example.com/no-content-type", GOOD.encode(), content_type=None),
        Page("https://a.example.com/utf16", GOOD.encode("utf-16"), content_type="text/html"),
        Page("https://a.example.com/good", GOOD.encode()),
    ]
    t0 = time.perf_counter()
    docs, ledger = _run(tmp_path, pages)
    assert time.perf_counter() - t0 < 60  # generous: guards against a stall, not a benchmark
    assert ledger == {
        "https://a.example.com/empty": "extract_empty",
        "https://a.example.com/whitespace": "extract_empty",
        "https://a.example.com/png": "decode_error",
        "https://a.example.com/gzip": "decode_error",
        "https://a.example.com/nested": "extract_empty",
    }
    assert set(docs) == {
        "https://a.example.com/invalid-utf8",
        "https://a.example.com/bogus-charset",
        "https://a.example.com/no-content-type",
        "https://a.example.com/utf16",
        "https://a.example.com/good",
    }
    good = docs["https://a.example.com/good"]["text"]
    for url in ("bogus-charset", "no-content-type", "utf16"):
        assert docs[f"https://a.example.com/{url}"]["text"] == good
    # one invalid byte costs one character, not the page (no re-read as cp1250 or the like)
    bad = docs["https://a.example.com/invalid-utf8"]["text"]
    assert bad == good.replace("three years", "trois années \ufffd très")


def test_time_cap_ledgers_extract_timeout(tmp_path: Path) -> None:
    pages = [
        Page("https://a.example.com/flat", FLAT),
        Page("https://a.example.com/good", GOOD.encode()),
    ]
    t0 = time.perf_counter()
    docs, ledger = _run(tmp_path, pages, timeout_s=0.5)
    assert time.perf_counter() - t0 < 20
    assert ledger == {"https://a.example.com/flat": "extract_timeout"}
    assert set(docs) == {"https://a.example.com/good"}


@pytest.mark.parametrize(
    ("body", "ctype", "expected", "codec"),
    [
        ("café".encode(), "text/html; charset=utf-8", "café", "utf-8"),
        ("café".encode("latin-1"), "text/html; charset=ISO-8859-1", "café", "cp1252"),
        # the header lies (utf-8), the meta tells the truth
        (
            '<meta charset="windows-1251">Привет'.encode("cp1251"),
            "text/html; charset=utf-8",
            '<meta charset="windows-1251">Привет',
            "cp1251",
        ),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">Мир'.encode(
                "koi8-r"
            ),
            None,
            '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">Мир',
            "koi8-r",
        ),
        ("€".encode("cp1252"), "text/html; charset=latin1", "€", "cp1252"),
        ("\ufeffhello".encode("utf-8"), "text/html; charset=latin1", "hello", "utf-8"),
        (b"", None, "", "utf-8"),
        # a stray invalid byte in a UTF-8 page: one replacement character
        ("é".encode() * 50 + b"\xff", None, "é" * 50 + "\ufffd", "utf-8"),
        # every non-ASCII byte invalid as UTF-8: a legacy charset, detected (cp1250 and cp1252
        # agree on these letters, so only the text is checked)
        ("Größe über Maß".encode("cp1252") * 20, None, "Größe über Maß" * 20, None),
        ("中文网页的内容".encode("gbk"), "text/html; charset=gb2312", "中文网页的内容", "gb18030"),
    ],
)
def test_decode_html(body: bytes, ctype: str | None, expected: str, codec: str | None) -> None:
    text, used = decode_html(body, ctype)
    assert text == expected
    if codec is not None:
        assert used == codec


def test_decode_html_binary() -> None:
    with pytest.raises(DecodeError):
        decode_html(b"\x00\x01\x02\x03" * 100, "text/html")
