"""filter stage: rule order, reasons and details, counts, same order, rerun skip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline import filter as filt
from pipeline.core.config import CorpusConfig, FilterConfig
from pipeline.core.errors import ConfigError
from pipeline.core.io import rows_to_table, write_table
from schemas.records import DOCS_SCHEMA, FILTERED_SCHEMA, doc_id


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
        "source": "live",
        "captured_at": None,
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
    assert out.schema.names == FILTERED_SCHEMA.names
    assert out.column("wiki_stripped_chars").null_count == out.num_rows  # no reference
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


def test_wikipedia_paragraphs_stripped_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    """Copied paragraphs leave the text, the length figures follow, a page that was mostly a
    copy is wikipedia_copy, the funnel counts paragraphs and characters; rerun skips, a new
    threshold or reference reruns."""
    from pipeline.core.stage import funnel_from_stats
    from pipeline.core.tokenizer import get_encoding
    from pipeline.filter.wiki_sources import iter_articles

    articles = list(iter_articles(shared_data / "wikipedia/enwiki-sample-pages-articles.xml.bz2"))
    ref = tmp_path / "ref.txt"
    ref.write_text("\n".join(articles) + "\n", encoding="utf-8")
    paras = [p for a in articles for p in a.split("\n") if len(p.split()) >= 60]
    own = [
        (
            "Our reporter walked the length of the harbour on Tuesday and counted the boats "
            "that had come back from the storm, one after another, until the light was gone."
        ),
        (
            "Local officials said the repairs would take months, and that the fishing season "
            "would start late this year for everyone who depends on the sea for a living."
        ),
    ]
    quoting = "\n".join([own[0], paras[0], own[1], paras[1]])
    mostly = "\n".join([paras[2], paras[3], "A short note of our own at the end."])
    docs = [
        _doc("https://news.example.com/quote", text=quoting, n_tokens=900),
        _doc("https://copy.example.com/copy", text=mostly, n_tokens=800),
        _doc("https://own.example.com/own", text="\n".join(own), n_tokens=600),
        _doc("https://en.wikipedia.org/wiki/Z", text=paras[4]),  # the domain rule comes first
    ]
    docs.sort(key=lambda d: d["id"])
    part = tmp_path / "docs" / "part-00001.parquet"
    write_table(part, rows_to_table(docs, DOCS_SCHEMA))
    cfg = CorpusConfig.model_validate(
        {
            "out_dir": str(tmp_path / "out"),
            "wikipedia": {"sources": [str(ref)]},
            "filter": {"min_tokens": 40},
        }
    )
    root = tmp_path / "out"
    stats = filt.run_part(part, root, cfg)
    assert (stats.n_in, stats.n_out) == (4, 2)
    assert dict(stats.dropped) == {"wikipedia": 1, "wikipedia_copy": 1}
    # what stripping took from the kept documents (the copy is dropped whole, its figures are
    # in the drop count)
    assert stats.extra["stripped"] == {
        "documents": 1,
        "paragraphs": 2,
        "chars": len(quoting) - len("\n".join(own)),
    }
    funnel = funnel_from_stats([stats])
    assert funnel["filter"]["stripped"] == stats.extra["stripped"]
    ledger = pq.read_table(root / "ledger" / "filter" / "part-00001.parquet").to_pylist()
    by_url = {r["key"]: (r["reason"], r["detail"]) for r in ledger}
    assert by_url["https://copy.example.com/copy"][0] == "wikipedia_copy"
    assert "tokens left after" in by_url["https://copy.example.com/copy"][1]
    out = {r["url"]: r for r in pq.read_table(root / "filtered" / "part-00001.parquet").to_pylist()}
    quote = out["https://news.example.com/quote"]
    enc = get_encoding()
    assert quote["text"] == "\n".join(own)
    assert quote["wiki_stripped_chars"] == len(quoting) - len(quote["text"])
    assert quote["n_tokens"] == len(enc.encode_ordinary(quote["text"]))
    assert quote["n_chars"] == len(quote["text"]) and 0.4 < quote["wiki_overlap"] < 0.95
    assert out["https://own.example.com/own"]["wiki_stripped_chars"] == 0
    assert out["https://own.example.com/own"]["wiki_overlap"] == 0.0
    assert len(list((root / "wikipedia").glob("index-*/ngrams.u64"))) == 1
    # rerun skips; a changed threshold reruns; another reference reruns
    assert filt.run_part(part, root, cfg).extra.get("skipped") is True
    strict = cfg.model_copy(deep=True)
    strict.wikipedia.paragraph_overlap = 1.0
    assert filt.run_part(part, root, strict).extra.get("skipped") is None
    other = tmp_path / "other.txt"
    other.write_text(own[0] + "\n", encoding="utf-8")
    swapped = cfg.model_copy(deep=True)
    swapped.wikipedia.sources = [str(other)]
    rerun = filt.run_part(part, root, swapped)
    assert rerun.extra.get("skipped") is None
    # own[0] leaves the quoting page; the own page, left with own[1] alone, is under the floor
    assert rerun.extra["stripped"] == {"documents": 1, "paragraphs": 1, "chars": len(own[0]) + 1}
    assert rerun.dropped == {"wikipedia": 1, "wikipedia_copy": 1}
    missing = cfg.model_copy(deep=True)
    missing.wikipedia.sources = [str(tmp_path / "no.xml.bz2")]
    with pytest.raises(ConfigError, match="not found"):
        filt.run_part(part, root, missing)


def test_decontamination(tmp_path: Path) -> None:
    """Documents sharing 13-grams with an evaluation example are dropped as eval_overlap,
    naming the set and the example's line; min_shared sets how many it takes."""
    examples = [
        "the quick brown fox jumps over the lazy dog while the farmer sleeps in the barn",
        "an entirely different example sentence about the weather in the northern hills today",
    ]
    evals = tmp_path / "ev.jsonl"
    evals.write_text("".join(json.dumps({"text": e}) + "\n" for e in examples))
    plain = tmp_path / "ev.txt"
    plain.write_text("\n\n" + examples[1] + "\n")
    docs = [
        _doc("https://a.example.com/1", text="Intro line.\n" + examples[0].upper() + "!"),
        _doc("https://b.example.com/2", text="Someone wrote: " + examples[1][:70]),
        _doc("https://c.example.com/3", text="Nothing shared with any evaluation set here."),
        _doc("https://d.example.com/4", text=examples[1]),
    ]
    docs.sort(key=lambda d: d["id"])
    part = tmp_path / "docs" / "part-00000.parquet"
    write_table(part, rows_to_table(docs, DOCS_SCHEMA))
    cfg = CorpusConfig.model_validate(
        {
            "out_dir": str(tmp_path),
            "decontaminate": {"eval_sets": {"ev": str(evals), "pl": str(plain)}},
        }
    )
    stats = filt.run_part(part, tmp_path, cfg)
    ledger = pq.read_table(tmp_path / "ledger" / "filter" / "part-00000.parquet").to_pylist()
    by_url = {r["key"]: (r["reason"], r["detail"]) for r in ledger}
    # example 1 has 16 words: 4 13-grams, all in document 1 (case and punctuation normalized)
    assert by_url["https://a.example.com/1"] == ("eval_overlap", "ev:1 (4 shared 13-grams)")
    # document 2 quotes 11 words of example 2: not one whole 13-gram
    assert "https://b.example.com/2" not in by_url
    # example 2 is in both sets (line 2 of ev, line 3 of pl): the first set by name is named
    assert by_url["https://d.example.com/4"] == ("eval_overlap", "ev:2 (1 shared 13-grams)")
    assert stats.n_out == 2 and stats.dropped == {"eval_overlap": 2}
    stricter = cfg.model_copy(deep=True)
    stricter.decontaminate.min_shared = 5  # more than any example has
    again = filt.run_part(part, tmp_path, stricter)
    assert again.extra.get("skipped") is None and "eval_overlap" not in again.dropped
    evals.write_text(json.dumps({"text": "something else entirely"}) + "\n")
    assert filt.run_part(part, tmp_path, stricter).extra.get("skipped") is None  # content counts
