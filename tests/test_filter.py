"""filter stage: rule order, reasons and details, counts, same order, rerun skip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline import filter as filt
from pipeline.core.config import CorpusConfig, FilterConfig
from pipeline.core.errors import ConfigError
from pipeline.core.io import rows_to_table, write_table
from schemas.records import DOCS_SCHEMA, doc_id


def _doc(url: str, **over: Any) -> dict[str, Any]:
    host = url.split("/")[2]
    d = {
        "id": doc_id(url),
        "url": url,
        "final_url": url,
        "domain": ".".join(host.split(".")[-2:]),
        "host": host,
        "karma": 3,
        "subreddits": ["news"],
        "first_seen": None,
        "reddit_title": "",
        "title": "t",
        "date": None,
        "text": "text of " + url,
        "lang": "en",
        "lang_score": 0.95,
        "n_chars": 3000,
        "n_words": 500,
        "n_tokens": 600,
        "mean_word_len": 4.7,
        "symbol_word_ratio": 0.0,
        "frac_lines_end_punct": 0.9,
        "dup_line_frac": 0.0,
        "n_stop_words": 60,
        "bullet_line_frac": 0.0,
        "ellipsis_line_frac": 0.0,
        "boilerplate_hits": 0,
        "wiki_overlap": None,
    }
    d.update(over)
    return d


CASES = [
    # (doc, expected (reason, detail) or None)
    (_doc("https://good.example.com/1"), None),
    (_doc("https://en.wikipedia.org/wiki/X", lang="de"), ("wikipedia", "wikipedia.org")),
    (
        _doc("https://short.ly/x", final_url="https://en.m.wikipedia.org/wiki/Y"),
        ("wikipedia", "wikipedia.org"),
    ),
    (_doc("https://de.example.com/2", lang="de", lang_score=0.97), ("wrong_language", "de 0.97")),
    (
        _doc("https://unsure.example.com/3", lang_score=0.5, n_tokens=5),
        ("wrong_language", "en 0.50"),
    ),
    (_doc("https://short.example.com/4", n_tokens=127), ("too_short", "127 < 128 tokens")),
    (_doc("https://edge.example.com/5", n_tokens=128), None),
    (
        _doc("https://symbols.example.com/6", symbol_word_ratio=0.25),
        ("max_symbol_word_ratio", "0.25 > 0.1"),
    ),
    (_doc("https://dups.example.com/7", dup_line_frac=0.5), ("max_dup_line_frac", "0.5 > 0.3")),
    (_doc("https://nostop.example.com/8", n_stop_words=1), ("min_stop_words", "1 < 2")),
    (
        _doc("https://bullets.example.com/9", bullet_line_frac=0.95),
        ("max_bullet_line_frac", "0.95 > 0.9"),
    ),
    (_doc("https://words.example.com/10", mean_word_len=12.5), ("max_mean_word_len", "12.5 > 10")),
    (
        _doc("https://dots.example.com/11", ellipsis_line_frac=0.5),
        ("max_ellipsis_line_frac", "0.5 > 0.3"),
    ),
    (_doc("https://notwiki.example.com/wikipedia.org"), None),
    (_doc("https://mywikipedia.org/x", domain="mywikipedia.org", host="mywikipedia.org"), None),
]


def test_check_rules() -> None:
    cfg = FilterConfig()
    for doc, expected in CASES:
        assert filt.check(doc, cfg) == expected, doc["url"]


def test_too_long_and_boilerplate_when_configured() -> None:
    cfg = FilterConfig(max_tokens=1000, max_boilerplate_hits=0)
    assert filt.check(_doc("https://a.example.com/", n_tokens=1001), cfg) == (
        "too_long",
        "1001 > 1000 tokens",
    )
    assert filt.check(_doc("https://a.example.com/", boilerplate_hits=2), cfg) == (
        "max_boilerplate_hits",
        "2 > 0",
    )


def test_run_part(tmp_path: Path) -> None:
    docs = sorted((d for d, _ in CASES), key=lambda d: d["id"])
    part = tmp_path / "docs" / "part-00003.parquet"
    write_table(part, rows_to_table(docs, DOCS_SCHEMA))
    cfg = CorpusConfig.model_validate({"out_dir": str(tmp_path)})
    stats = filt.run_part(part, tmp_path, cfg)
    assert (stats.n_in, stats.n_out) == (15, 4)
    assert dict(stats.dropped) == {
        "wikipedia": 2,
        "wrong_language": 2,
        "too_short": 1,
        "max_symbol_word_ratio": 1,
        "max_dup_line_frac": 1,
        "min_stop_words": 1,
        "max_bullet_line_frac": 1,
        "max_mean_word_len": 1,
        "max_ellipsis_line_frac": 1,
    }
    out = pq.read_table(tmp_path / "filtered" / "part-00003.parquet")
    assert out.schema.names == DOCS_SCHEMA.names
    kept = [d["id"] for d, exp in CASES if exp is None]
    assert out.column("id").to_pylist() == sorted(kept)
    ledger = pq.read_table(tmp_path / "ledger" / "filter" / "part-00003.parquet").to_pylist()
    assert {r["key"]: (r["reason"], r["detail"]) for r in ledger} == {
        d["url"]: exp for d, exp in CASES if exp is not None
    }
    assert filt.run_part(part, tmp_path, cfg).extra.get("skipped") is True
    # a changed threshold changes the fingerprint: the part reruns
    looser = CorpusConfig.model_validate({"out_dir": str(tmp_path), "filter": {"min_tokens": 100}})
    rerun = filt.run_part(part, tmp_path, looser)
    assert rerun.extra.get("skipped") is None and rerun.n_out == 5


def test_empty_part(tmp_path: Path) -> None:
    part = tmp_path / "docs" / "part-00000.parquet"
    write_table(part, rows_to_table([], DOCS_SCHEMA))
    cfg = CorpusConfig.model_validate({"out_dir": str(tmp_path)})
    stats = filt.run_part(part, tmp_path, cfg)
    assert (stats.n_in, stats.n_out) == (0, 0)
    assert pq.read_table(tmp_path / "filtered" / "part-00000.parquet").num_rows == 0


def test_wikipedia_overlap_rule(shared_data: Path, tmp_path: Path) -> None:
    """End to end: overlap computed from the real dump, stored, thresholded, ledgered."""
    from tests.test_wikipedia import DUMP, filler, mixed, two_paragraphs

    dump = shared_data / DUMP
    copied = two_paragraphs(dump)
    high, _ = mixed(copied, 80)
    low, _ = mixed(copied, 600)
    docs = [
        _doc("https://copy.example.com/1", text=high),
        _doc("https://quote.example.com/2", text=low),
        _doc("https://own.example.com/3", text=filler(500, 3)),
        # the domain rule comes first, whatever the overlap
        _doc("https://en.wikipedia.org/wiki/Z", text=copied),
        # rules after it still apply to documents below the threshold
        _doc("https://short.example.com/4", text=low, n_tokens=5),
    ]
    docs.sort(key=lambda d: d["id"])
    part = tmp_path / "docs" / "part-00001.parquet"
    write_table(part, rows_to_table(docs, DOCS_SCHEMA))
    cfg = CorpusConfig.model_validate(
        {"out_dir": str(tmp_path), "filter": {"wikipedia_dump": str(dump)}}
    )
    stats = filt.run_part(part, tmp_path, cfg)
    assert (stats.n_in, stats.n_out) == (5, 2)
    assert stats.n_in == stats.n_out + sum(stats.dropped.values())
    assert dict(stats.dropped) == {"wikipedia": 1, "wikipedia_overlap": 1, "too_short": 1}
    ledger = pq.read_table(tmp_path / "ledger" / "filter" / "part-00001.parquet").to_pylist()
    by_url = {r["key"]: (r["reason"], r["detail"]) for r in ledger}
    reason, detail = by_url["https://copy.example.com/1"]
    assert reason == "wikipedia_overlap" and 0.5 < float(detail) < 0.9
    assert by_url["https://en.wikipedia.org/wiki/Z"] == ("wikipedia", "wikipedia.org")
    out = pq.read_table(tmp_path / "filtered" / "part-00001.parquet").to_pylist()
    overlaps = {r["url"]: r["wiki_overlap"] for r in out}
    assert overlaps["https://own.example.com/3"] == 0.0
    assert 0.1 < overlaps["https://quote.example.com/2"] < 0.5
    assert len(list((tmp_path / "wikipedia").glob("ngrams-*.npy"))) == 1
    # rerun skips; a changed threshold or another dump reruns
    assert filt.run_part(part, tmp_path, cfg).extra.get("skipped") is True
    strict = cfg.model_copy(deep=True)
    strict.filter.max_wiki_overlap = 0.1
    rerun = filt.run_part(part, tmp_path, strict)
    assert rerun.extra.get("skipped") is None and rerun.dropped["wikipedia_overlap"] == 3
    other = tmp_path / "other.xml"
    other.write_text(
        "<mediawiki><page><title>T</title><ns>0</ns><revision><text>"
        + filler(500, 3)
        + "</text></revision></page></mediawiki>"
    )
    swapped = strict.model_copy(deep=True)
    swapped.filter.wikipedia_dump = str(other)
    rerun = filt.run_part(part, tmp_path, swapped)
    assert rerun.extra.get("skipped") is None
    # now the "own" text is the Wikipedia one, and the copied paragraphs are not
    assert dict(rerun.dropped) == {"wikipedia": 1, "wikipedia_overlap": 1, "too_short": 1}
    out = pq.read_table(tmp_path / "filtered" / "part-00001.parquet").to_pylist()
    assert {r["url"]: r["wiki_overlap"] for r in out} == {
        "https://copy.example.com/1": 0.0,
        "https://quote.example.com/2": 0.0,
    }


def test_wikipedia_overlap_off_keeps_output(tmp_path: Path) -> None:
    """Unset dump: the column stays null and no index is built."""
    docs = sorted((d for d, _ in CASES), key=lambda d: d["id"])
    part = tmp_path / "docs" / "part-00000.parquet"
    write_table(part, rows_to_table(docs, DOCS_SCHEMA))
    filt.run_part(part, tmp_path, CorpusConfig.model_validate({"out_dir": str(tmp_path)}))
    out = pq.read_table(tmp_path / "filtered" / "part-00000.parquet")
    assert out.column("wiki_overlap").null_count == out.num_rows
    assert not (tmp_path / "wikipedia").exists()
    missing = {"out_dir": str(tmp_path), "filter": {"wikipedia_dump": str(tmp_path / "no.xml")}}
    with pytest.raises(ConfigError, match="wikipedia_dump"):
        filt.run_part(part, tmp_path, CorpusConfig.model_validate(missing))
