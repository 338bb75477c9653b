"""Wikipedia overlap: dump parsing, markup stripping, n-gram overlap, index caching."""

from __future__ import annotations

import bz2
import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.config import load_config
from pipeline.core.ngrams import ngram_hashes, normalize
from pipeline.filter import wikipedia as wiki

DUMP = "wikipedia/enwiki-sample-pages-articles.xml.bz2"

# Unrelated filler: a fixed vocabulary of invented words, drawn with a seed.
VOCAB = [f"zorb{i}x" for i in range(500)]


def filler(n_words: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(VOCAB[i] for i in rng.integers(0, len(VOCAB), n_words))


def two_paragraphs(dump: Path, min_words: int = 60) -> str:
    """Two consecutive long paragraphs of one article's plain text."""
    for _, text in wiki.iter_articles(dump):
        paras = text.split("\n\n")
        for a, b in itertools.pairwise(paras):
            if len(a.split()) >= min_words and len(b.split()) >= min_words:
                return a + "\n\n" + b
    raise AssertionError("no article with two long consecutive paragraphs")


def mixed(copied: str, n_filler: int, seed: int = 0) -> tuple[str, float]:
    """Copied text then filler, and the overlap expected: n-grams inside the copy / all."""
    doc = copied + "\n\n" + filler(n_filler, seed)
    n = 13
    w_copy = len(normalize(copied).split())
    w_all = len(normalize(doc).split())
    return doc, (w_copy - n + 1) / (w_all - n + 1)


@pytest.fixture(scope="module")
def dump(shared_data: Path) -> Path:
    return shared_data / DUMP


@pytest.fixture(scope="module")
def index(dump: Path) -> np.ndarray:
    idx, _ = wiki.build_index(dump, 13)
    return idx


def test_parser_yields_exactly_the_articles(dump: Path) -> None:
    with bz2.open(dump) as f:
        xml = f.read().decode("utf-8")
    pages = re.findall(r"<page>.*?</page>", xml, re.DOTALL)
    expected = [
        re.search(r"<title>(.*?)</title>", p).group(1)  # type: ignore[union-attr]
        for p in pages
        if "<ns>0</ns>" in p and "<redirect" not in p
    ]
    assert len(pages) == 206 and len(expected) == 106
    titles = [t for t, _ in wiki.iter_pages(dump)]
    assert titles == [t.replace("&amp;", "&").replace("&quot;", '"') for t in expected]
    # every article yields text, and no markup survives in it
    for title, text in wiki.iter_articles(dump):
        assert text, title
        assert "{{" not in text and "[[" not in text and "<ref" not in text, title


def test_strip_markup() -> None:
    src = (
        "{{Infobox person|name=X|birth={{birth date|1900|1|1}}}}\n"
        "'''Ada''' was a [[mathematician|math person]] from [[London]].<ref>{{cite|a}}</ref>"
        " She wrote<ref name=n/> notes.<!-- hidden -->\n"
        "== Early life ==\n"
        "{| class=wikitable\n|-\n| cell || cell\n|}\n"
        "[[File:Ada.jpg|thumb|A [[portrait]] of Ada]]\n"
        "* a <small>listed</small> item\n"
        "See [https://example.org the site].\n"
        "[[Category:Mathematicians]]\n[[de:Ada]]"
    )
    assert wiki.strip_markup(src) == (
        "Ada was a math person from London. She wrote notes.\n"
        "Early life\n\n"
        "a listed item\n"
        "See the site."
    )


def test_overlap_of_copied_paragraphs(dump: Path, index: np.ndarray) -> None:
    copied = two_paragraphs(dump)
    high, expect_high = mixed(copied, 80)
    low, expect_low = mixed(copied, 600)
    assert 0.55 < expect_high < 0.85 and 0.1 < expect_low < 0.45
    got_high, got_low = wiki.overlap(high, index), wiki.overlap(low, index)
    assert got_high == pytest.approx(expect_high, abs=0.02)
    assert got_low == pytest.approx(expect_low, abs=0.02)
    assert got_high > 0.5 > got_low
    # batched equals one by one; a copy of the whole paragraphs is all overlap
    assert wiki.overlaps([high, low, copied], index).tolist() == pytest.approx(
        [got_high, got_low, 1.0]
    )


def test_no_wikipedia_and_short_texts(index: np.ndarray) -> None:
    assert wiki.overlap(filler(400, 7), index) == 0.0
    assert wiki.overlap("Anarchism is a political philosophy", index) == 0.0  # < 13 words
    assert wiki.overlap("", index) == 0.0
    assert wiki.overlaps([], index).size == 0


def test_index_is_sorted_unique_and_deterministic(dump: Path, index: np.ndarray) -> None:
    assert index.dtype == np.uint64 and index.size > 100_000
    assert np.all(index[1:] > index[:-1])
    # The same hashes in a fresh interpreter (no PYTHONHASHSEED dependence).
    code = (
        "from pipeline.core.ngrams import ngram_hashes;"
        "print(ngram_hashes('a b c d e f g h i j k l m n o', 13).tolist())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            cwd=Path(__file__).resolve().parents[1],
        ).stdout
        for seed in ("1", "2")
    }
    assert outs == {str(ngram_hashes("a b c d e f g h i j k l m n o", 13).tolist()) + "\n"}


def test_index_cache(dump: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    idx = wiki.load_index(dump, 13, tmp_path)
    files = sorted((tmp_path / "wikipedia").glob("ngrams-*.npy"))
    assert len(files) == 1 and not list((tmp_path / "wikipedia").glob(".*.tmp"))
    mtime = files[0].stat().st_mtime_ns

    def no_parse(*a: object, **k: object) -> None:
        raise AssertionError("index rebuilt")

    monkeypatch.setattr(wiki, "build_index", no_parse)
    again = wiki.load_index(dump, 13, tmp_path)
    assert files[0].stat().st_mtime_ns == mtime
    assert np.array_equal(idx, again)
    monkeypatch.undo()
    # another n is another index
    wiki.load_index(dump, 8, tmp_path)
    assert len(list((tmp_path / "wikipedia").glob("ngrams-*.npy"))) == 2


def test_fingerprint_follows_dump_content(tmp_path: Path) -> None:
    xml = tmp_path / "tiny.xml"
    page = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/"><page><title>T</title>'
        "<ns>0</ns><id>1</id><revision><text>{}</text></revision></page></mediawiki>"
    )
    xml.write_text(page.format("one two three four"))
    cache = tmp_path / "out" / "wikipedia"
    fp1 = wiki.index_fingerprint(xml, 13, cache)
    assert wiki.index_fingerprint(xml, 13, cache) == fp1
    assert wiki.index_fingerprint(xml, 12, cache) != fp1
    xml.write_text(page.format("one two three five"))
    assert wiki.index_fingerprint(xml, 13, cache) != fp1
    assert [t for t, _ in wiki.iter_pages(xml)] == ["T"]  # plain .xml, export-0.11 namespace


def test_config_resolves_dump_path(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("filter:\n  wikipedia_dump: data/enwiki.xml.bz2\n  wiki_ngram: 8\n")
    cfg = load_config(cfg_file)
    assert cfg.filter.wikipedia_dump == str(tmp_path / "data" / "enwiki.xml.bz2")
    assert cfg.filter.wiki_ngram == 8 and cfg.filter.max_wiki_overlap == 0.5
    assert load_config(None).filter.wikipedia_dump is None
