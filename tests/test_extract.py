"""extract stage driver: WARC -> docs part + ledger, counts add up, reruns skip, bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import extract
from pipeline.config import CorpusConfig
from pipeline.extract import extract_text
from schemas.records import DOCS_SCHEMA, doc_id
from tests.conftest import RANKS_FILE
from tests.test_extract_fixtures import ENGLISH_PARAS, Page, article_html, write_crawl

GERMAN_PARAS = [
    (
        "Der Stadtrat hat am Dienstag einem neuen Plan für das Flussufer zugestimmt und damit "
        "eine Debatte beendet, die mehr als drei Jahre gedauert hatte."
    ),
    (
        "Befürworter sagten, der neue Park und die Wohnungen würden Familien in ein Viertel "
        "zurückbringen, das seit der Schließung der Fabriken Einwohner verliert."
    ),
    (
        "Gegner meinten, die Kosten für die Stadt seien unterschätzt worden und das Geld wäre "
        "besser in Schulen, Straßen und Busse investiert."
    ),
]


def _cfg(tmp_path: Path, **extract_overrides: object) -> CorpusConfig:
    data: dict = {"out_dir": str(tmp_path)}
    if RANKS_FILE.exists():
        data["tokenizer"] = {"ranks_file": str(RANKS_FILE)}
    if extract_overrides:
        data["extract"] = extract_overrides
    return CorpusConfig.model_validate(data)


def _pages() -> list[Page]:
    en = article_html("River plan approved", ENGLISH_PARAS)
    de = article_html("Plan für das Flussufer", GERMAN_PARAS)
    latin1 = article_html(
        "Café plan", ["Le café était fermé. " + p for p in ENGLISH_PARAS], charset=None
    )
    return [
        Page("https://news.example.com/a", en.encode()),
        Page("https://zeitung.example.de/b", de.encode()),
        # charset only in the HTTP header, body in latin-1
        Page(
            "https://cafe.example.org/c",
            latin1.encode("latin-1"),
            content_type="text/html; charset=ISO-8859-1",
        ),
        Page("https://empty.example.com/d", b""),
        Page("https://binary.example.com/e", bytes(range(256)) * 40),
        Page(
            "https://nav.example.com/f",
            b"<html><body><div><script>x=1</script></div></body></html>",
        ),
        Page("https://gone.example.com/g", error="http_4xx"),
        Page("https://orphan.example.com/h", en.encode(), in_links=False),
    ]


def test_run_part_end_to_end(tmp_path: Path) -> None:
    links, fetches = write_crawl(tmp_path, _pages())
    cfg = _cfg(tmp_path)
    stats = extract.run_part(links, fetches, tmp_path, cfg)
    # the http_4xx row was ledgered by the crawl: not an extract input
    assert stats.n_in == 7
    assert stats.n_out == 3
    assert dict(stats.dropped) == {"extract_empty": 2, "decode_error": 1, "missing_link": 1}
    assert sorted(stats.outputs) == ["docs/part-00000.parquet", "ledger/extract/part-00000.parquet"]

    docs = pq.read_table(tmp_path / "docs" / "part-00000.parquet")
    # Parquet has no seconds unit: first_seen reads back as ms, the same instants
    assert docs.schema.names == DOCS_SCHEMA.names
    assert docs.cast(DOCS_SCHEMA).schema.equals(DOCS_SCHEMA)
    rows = docs.to_pylist()
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    by_url = {r["url"]: r for r in rows}
    a = by_url["https://news.example.com/a"]
    assert a["id"] == doc_id("https://news.example.com/a")
    assert a["lang"] == "en" and a["lang_score"] > 0.9
    assert a["title"] == "River plan approved"
    assert a["reddit_title"] == "reddit title 0"
    assert a["domain"] == "example.com" and a["host"] == "news.example.com"
    assert a["karma"] == 5 and a["subreddits"] == ["news"]
    assert "Home" not in a["text"] and "Copyright" not in a["text"]
    # the headline repeats the title, which has its own column
    assert a["text"].startswith("The city council voted")
    assert a["n_tokens"] > 128 and a["n_words"] > 150 and a["n_stop_words"] > 10
    assert by_url["https://zeitung.example.de/b"]["lang"] == "de"
    assert "Le café était fermé." in by_url["https://cafe.example.org/c"]["text"]

    ledger = pq.read_table(tmp_path / "ledger" / "extract" / "part-00000.parquet").to_pylist()
    reasons = {r["key"]: r["reason"] for r in ledger}
    assert reasons == {
        "https://empty.example.com/d": "extract_empty",
        "https://binary.example.com/e": "decode_error",
        "https://nav.example.com/f": "extract_empty",
        "https://orphan.example.com/h": "missing_link",
    }
    marker = json.loads((tmp_path / "_done" / "extract" / "part-00000.json").read_text())
    assert "crawl/warc/part-00000.warc.gz" in marker["inputs"]

    # rerun: the marker matches, nothing is redone; output bytes are identical when forced
    before = (tmp_path / "docs" / "part-00000.parquet").read_bytes()
    again = extract.run_part(links, fetches, tmp_path, cfg)
    assert again.extra.get("skipped") is True
    forced = extract.run_part(links, fetches, tmp_path, cfg, force=True)
    assert forced.n_out == 3
    assert (tmp_path / "docs" / "part-00000.parquet").read_bytes() == before


def test_two_processes_same_bytes(tmp_path: Path) -> None:
    pages = _pages()
    one, two = tmp_path / "one", tmp_path / "two"
    for root, procs in ((one, 1), (two, 2)):
        links, fetches = write_crawl(root, pages)
        stats = extract.run_part(links, fetches, root, _cfg(root, processes=procs))
        assert stats.n_out == 3
    assert (one / "docs" / "part-00000.parquet").read_bytes() == (
        two / "docs" / "part-00000.parquet"
    ).read_bytes()
    assert (one / "ledger" / "extract" / "part-00000.parquet").read_bytes() == (
        two / "ledger" / "extract" / "part-00000.parquet"
    ).read_bytes()


def test_extract_text_public_function(shared_data: Path) -> None:
    html_dir = shared_data / "extraction" / "scrapinghub" / "html"
    gold = json.loads(
        (shared_data / "extraction" / "scrapinghub" / "ground-truth.json").read_text()
    )
    key = min(gold)
    raw = gzip.decompress((html_dir / f"{key}.html.gz").read_bytes())
    text = extract_text(raw, gold[key]["url"])
    assert text is not None
    first_gold_line = gold[key]["articleBody"].strip().splitlines()[0]
    assert first_gold_line[:40] in text
    assert extract_text(raw.decode("utf-8", "replace")) == extract_text(raw)


@pytest.mark.parametrize(
    "html",
    [b"", "", "   ", b"\x00\x01\x02" * 1000, b"\xff\xfe\xfa invalid \xc3\x28 bytes <p>x</p>"],
)
def test_extract_text_bad_input(html: str | bytes) -> None:
    assert extract_text(html) is None


def test_run_part_from_a_worker_thread(tmp_path: Path) -> None:
    """Flows run parts in threads, where SIGALRM cannot cap a page: the driver then uses a
    worker process (forkserver, since forking a threaded process is unsafe), same output."""
    import threading

    pages = _pages()
    main_root, thread_root = tmp_path / "main", tmp_path / "thread"
    links, fetches = write_crawl(main_root, pages)
    extract.run_part(links, fetches, main_root, _cfg(main_root))
    links, fetches = write_crawl(thread_root, pages)
    result: dict = {}

    def target() -> None:
        result["stats"] = extract.run_part(links, fetches, thread_root, _cfg(thread_root))

    t = threading.Thread(target=target)
    t.start()
    t.join(120)
    assert result["stats"].n_out == 3
    assert (main_root / "docs" / "part-00000.parquet").read_bytes() == (
        thread_root / "docs" / "part-00000.parquet"
    ).read_bytes()
