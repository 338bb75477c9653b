"""extract stage driver: WARC -> docs part + ledger, counts add up, reruns skip, bad input."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import extract
from pipeline.core.config import CorpusConfig
from pipeline.core.io import read_table, rows_to_table, write_table
from pipeline.extract import extract_text
from schemas.records import DOCS_SCHEMA, FETCH_SCHEMA, LINKS_SCHEMA, doc_id
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
    assert sorted(stats.outputs) == [
        "docs/_index/part-00000.parquet",
        "docs/part-00000.parquet",
        "ledger/extract/part-00000.parquet",
    ]

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


# ---------------------------------------------------------------------------------------------
# incremental re-extraction: a part whose fetch rows are carried over keeps their outcomes

PART = "part-00000"
OUTPUTS = ("docs/part-00000.parquet", "ledger/extract/part-00000.parquet")


def _month1_pages() -> list[Page]:
    return [
        Page(
            f"https://news{i}.example.com/a",
            article_html(f"Story {i}", [f"Story number {i}. " + p for p in ENGLISH_PARAS]).encode(),
        )
        for i in range(3)
    ] + [
        Page("https://empty.example.com/d", b""),
        Page(
            "https://nav.example.com/f",
            b"<html><body><div><script>x=1</script></div></body></html>",
        ),
        Page("https://left.example.com/x", article_html("Gone next month", ENGLISH_PARAS).encode()),
    ]


def _month2_pages() -> list[Page]:
    return [
        Page(
            f"https://fresh{i}.example.org/b",
            article_html(f"New {i}", [f"Fresh item {i}. " + p for p in ENGLISH_PARAS]).encode(),
        )
        for i in range(2)
    ] + [Page("https://zeitung.example.de/b", article_html("Plan", GERMAN_PARAS).encode())]


def _month1(root: Path) -> tuple[Path, Path]:
    """write_crawl's part plus a fetch row whose WARC record cannot be read (warc_error)."""
    links, fetches = write_crawl(root, _month1_pages(), PART)
    warc = f"crawl/warc/{PART}.warc.gz"
    size = (root / warc).stat().st_size
    rows = read_table(fetches).to_pylist()
    rows.append({**rows[0], "url": "https://broken.example.com/w", "warc_offset": size})
    write_table(fetches, rows_to_table(rows, FETCH_SCHEMA))
    link_rows = read_table(links).to_pylist()
    link_rows.append({**link_rows[0], "url": "https://broken.example.com/w"})
    write_table(links, rows_to_table(link_rows, LINKS_SCHEMA))
    return links, fetches


def _month2(root: Path) -> tuple[Path, Path]:
    """The crawl's next month: earlier fetch rows carried over unchanged (minus a URL that left
    the links part), new pages in a new WARC file, karma and subreddits of one old URL changed
    by a repost."""
    links, fetches = (
        root / "links" / f"{PART}.parquet",
        root / "crawl" / "fetches" / f"{PART}.parquet",
    )
    new = f"{PART}-00001"
    new_links, new_fetches = write_crawl(root, _month2_pages(), new)
    gone = "https://left.example.com/x"
    link_rows = [r for r in read_table(links).to_pylist() if r["url"] != gone]
    for r in link_rows:
        if r["url"] == "https://news1.example.com/a":
            r["karma"], r["subreddits"] = 40, ["news", "worldnews"]
    link_rows += read_table(new_links).to_pylist()
    fetch_rows = [r for r in read_table(fetches).to_pylist() if r["url"] != gone]
    fetch_rows += read_table(new_fetches).to_pylist()
    write_table(links, rows_to_table(sorted(link_rows, key=lambda r: r["url"]), LINKS_SCHEMA))
    write_table(fetches, rows_to_table(fetch_rows, FETCH_SCHEMA))
    new_links.unlink()
    new_fetches.unlink()
    return links, fetches


def _copy_inputs(src: Path, dst: Path) -> tuple[Path, Path]:
    for rel in ("links", "crawl"):
        shutil.copytree(src / rel, dst / rel)
    return dst / "links" / f"{PART}.parquet", dst / "crawl" / "fetches" / f"{PART}.parquet"


def _count_trafilatura(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    calls: list[str | None] = []
    real = extract.run_trafilatura

    def counting(html: str, url: str | None, settings: extract.Settings):  # type: ignore[no-untyped-def]
        calls.append(url)
        return real(html, url, settings)

    monkeypatch.setattr(extract.driver, "run_trafilatura", counting)
    return calls


def test_incremental_reuses_earlier_outcomes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inc, kept = tmp_path / "inc", tmp_path / "kept"
    cfg = _cfg(inc)
    links, fetches = _month1(inc)
    first = extract.run_part(links, fetches, inc, cfg)
    assert (first.n_in, first.n_out) == (7, 4)
    assert first.extra["reused"] == 0 and first.extra["extracted"] == 7

    links, fetches = _month2(inc)
    calls = _count_trafilatura(monkeypatch)
    stats = extract.run_part(links, fetches, inc, cfg)
    # 6 earlier pages stay (one left): 5 outcomes reused, the warc_error row is tried again
    assert stats.n_in == 9
    assert stats.extra["reused"] == 5
    assert stats.extra["extracted"] == 4
    assert sorted(calls) == sorted(p.url for p in _month2_pages())
    assert stats.n_out == 6
    assert dict(stats.dropped) == {"extract_empty": 2, "warc_error": 1}

    # The same inputs extracted from scratch give the same bytes. The scratch tree sits at the
    # same path: warc_error details name the WARC file's absolute path.
    calls.clear()
    done = {rel: (inc / rel).read_bytes() for rel in (*OUTPUTS, "docs/_index/part-00000.parquet")}
    inc.rename(kept)
    links, fetches = _copy_inputs(kept, inc)
    full = extract.run_part(links, fetches, inc, _cfg(inc), force=True)
    assert full.extra["reused"] == 0 and len(calls) == 7  # all but the empty and broken
    for rel, data in done.items():
        assert (inc / rel).read_bytes() == data, rel

    docs = {r["url"]: r for r in pq.read_table(inc / OUTPUTS[0]).to_pylist()}
    assert docs["https://news1.example.com/a"]["karma"] == 40
    assert docs["https://news1.example.com/a"]["subreddits"] == ["news", "worldnews"]
    assert "https://left.example.com/x" not in docs
    ledger = pq.read_table(inc / OUTPUTS[1]).to_pylist()
    assert "https://left.example.com/x" not in {r["key"] for r in ledger}

    # nothing changed since: the marker matches
    calls.clear()
    assert extract.run_part(links, fetches, inc, cfg).extra.get("skipped") is True
    assert calls == []


def _reextract(root: Path, **extract_cfg: object) -> dict:
    links, fetches = _month1(root)
    extract.run_part(links, fetches, root, _cfg(root))
    links, fetches = _month2(root)
    return extract.run_part(links, fetches, root, _cfg(root, **extract_cfg)).extra


def test_incremental_changed_config_extracts_all(tmp_path: Path) -> None:
    extra = _reextract(tmp_path, favor_precision=True)
    assert extra["reused"] == 0 and extra["extracted"] == 9


def test_incremental_processes_do_not_count_as_config(tmp_path: Path) -> None:
    extra = _reextract(tmp_path, processes=2)
    assert extra["reused"] == 5 and extra["extracted"] == 4


def test_incremental_force_extracts_all(tmp_path: Path) -> None:
    links, fetches = _month1(tmp_path)
    extract.run_part(links, fetches, tmp_path, _cfg(tmp_path))
    links, fetches = _month2(tmp_path)
    extra = extract.run_part(links, fetches, tmp_path, _cfg(tmp_path), force=True).extra
    assert extra["reused"] == 0 and extra["extracted"] == 9


@pytest.mark.parametrize(
    "damage", ["no_index", "docs_rewritten", "marker_garbage", "version", "warc_rewritten"]
)
def test_incremental_falls_back_when_earlier_result_unusable(tmp_path: Path, damage: str) -> None:
    links, fetches = _month1(tmp_path)
    extract.run_part(links, fetches, tmp_path, _cfg(tmp_path))
    marker = tmp_path / "_done" / "extract" / f"{PART}.json"
    if damage == "no_index":
        (tmp_path / "docs" / "_index" / f"{PART}.parquet").unlink()
    elif damage == "docs_rewritten":
        # a killed run wrote a new docs part but no marker: it must not mix with the old index
        docs = tmp_path / OUTPUTS[0]
        write_table(docs, pq.read_table(docs).slice(1).cast(DOCS_SCHEMA))
    elif damage == "marker_garbage":
        marker.write_text("{not json")
    elif damage == "version":
        data = json.loads(marker.read_text())
        data["version"] = extract.VERSION + 1
        marker.write_text(json.dumps(data))
    elif damage == "warc_rewritten":
        # same name, offsets still valid, other bytes (a recrawl): its rows are extracted again
        with open(tmp_path / "crawl" / "warc" / f"{PART}.warc.gz", "ab") as f:
            f.write(b"\0")
    links, fetches = _month2(tmp_path)
    stats = extract.run_part(links, fetches, tmp_path, _cfg(tmp_path))
    assert stats.extra["reused"] == 0 and stats.extra["extracted"] == 9
    assert stats.n_out == 6


def test_index_schema_matches_fetch_fields() -> None:
    from pipeline.extract.previous import INDEX_SCHEMA, KEY_FIELDS, PAGE_FIELDS

    assert tuple(INDEX_SCHEMA.names) == KEY_FIELDS
    for name in KEY_FIELDS:
        assert FETCH_SCHEMA.field(name).type == INDEX_SCHEMA.field(name).type
    assert "text" in PAGE_FIELDS and "karma" not in PAGE_FIELDS
    assert isinstance(INDEX_SCHEMA, pa.Schema)
