"""The report: every figure of summary.json recomputed here from a synthetic build with known
contents, the page's tables read back, reruns byte-identical, empty builds survive."""

from __future__ import annotations

import html
import json
import shutil
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import plotly.offline
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import report
from pipeline.core.ledger import STAGES
from schemas.records import DOCS_SCHEMA, FETCH_SCHEMA, LEDGER_SCHEMA, shard_schema

REPO = Path(__file__).resolve().parents[1]
DEMO_OUT = REPO / "demo-out"
EVIL = '<img src=x onerror="alert(1)">'


# --- a synthetic build ----------------------------------------------------------------------


def _write(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _doc(i: int, lang: str | None, score: float | None, overlap: float | None) -> dict[str, Any]:
    return {
        "id": f"d{i:04d}",
        "url": f"http://s{i}.test/a",
        "final_url": None,
        "domain": f"s{i}.test",
        "host": None,
        "karma": 3,
        "subreddits": ["x"],
        "first_seen": None,
        "reddit_title": "",
        "title": None,
        "date": None,
        "text": "some text " * 5,
        "lang": lang,
        "lang_score": score,
        "n_chars": 100 + i,
        "n_words": 10,
        "n_tokens": 12,
        "mean_word_len": 4.0,
        "symbol_word_ratio": 0.0,
        "frac_lines_end_punct": 1.0,
        "dup_line_frac": 0.0,
        "n_stop_words": 3,
        "bullet_line_frac": 0.0,
        "ellipsis_line_frac": 0.0,
        "boilerplate_hits": 0,
        "wiki_overlap": overlap,
    }


def make_build(root: Path) -> dict[str, Any]:
    """Write a small build with known contents; return the raw rows the tests count from."""
    truth: dict[str, Any] = {}

    # ledger: several parts per stage, more than 5 rows per reason, smallest keys spread
    # over parts, null and empty details.
    ledger: dict[str, list[list[dict[str, Any]]]] = {
        "harvest": [
            [
                {"key": f"p{k:03d}", "reason": "low_karma", "detail": str(k % 3)}
                for k in (9, 4, 17, 30)
            ]
            + [{"key": f"p{k:03d}", "reason": "self_post", "detail": None} for k in (5, 6)],
            [
                {"key": f"p{k:03d}", "reason": "low_karma", "detail": str(k % 3)}
                for k in (2, 11, 3, 1)
            ]
            + [{"key": "p100", "reason": "blocked_domain", "detail": "imgur.com"}],
        ],
        "crawl": [
            [
                {"key": "http://b.test/1", "reason": "http_4xx", "detail": "status 404"},
                {"key": "http://a.test/2", "reason": "http_4xx", "detail": "status 410"},
                {"key": "http://c.test/" + EVIL, "reason": "robots", "detail": ""},
            ]
        ],
        "filter": [
            [
                {
                    "key": "http://en.wikipedia.org/wiki/A",
                    "reason": "wikipedia",
                    "detail": "wikipedia.org",
                },
                {
                    "key": "http://en.wikipedia.org/wiki/B",
                    "reason": "wikipedia",
                    "detail": "wikipedia.org",
                },
                {
                    "key": "http://copy.test/w",
                    "reason": "wikipedia_copy",
                    "detail": "12 < 128 tokens left after 900 chars of Wikipedia",
                },
            ]
            + [
                {"key": f"http://es.test/{k}", "reason": "wrong_language", "detail": f"es 0.9{k}"}
                for k in range(7)
            ]
        ],
        "dedup": [
            [
                {"key": "x1", "reason": "exact_duplicate", "detail": "keepA"},
                {"key": "x2", "reason": "exact_duplicate", "detail": "keepA"},
                {"key": "x3", "reason": "near_duplicate", "detail": "keepB"},
            ],
            [
                {"key": "x4", "reason": "near_duplicate", "detail": "keepA"},
                {"key": "x5", "reason": "near_duplicate", "detail": "keepC"},
                {"key": "x6", "reason": "exact_duplicate", "detail": "keepD"},
                {"key": "x7", "reason": "exact_duplicate", "detail": "keepD"},
            ],
        ],
        "extract": [[]],
    }
    for stage, parts in ledger.items():
        for n, rows in enumerate(parts):
            _write(root / "ledger" / stage / f"part-{n:05d}.parquet", rows, LEDGER_SCHEMA)
    truth["ledger"] = {
        stage: [r for part in parts for r in part] for stage, parts in ledger.items()
    }

    # crawl fetches
    outcomes = [(200, None)] * 5 + [
        (404, "http_4xx"),
        (410, "http_4xx"),
        (None, "robots"),
        (200, "bad_content_type"),
        (None, "timeout"),
        (503, "http_5xx"),
    ]
    fetches = [
        {
            "url": f"http://f{i}.test/",
            "final_url": None,
            "status": s,
            "content_type": None,
            "bytes": 0,
            "fetched_at": None,
            "elapsed_ms": None,
            "error": e,
            "warc_file": None,
            "warc_offset": None,
            "warc_length": None,
        }
        for i, (s, e) in enumerate(outcomes)
    ]
    _write(root / "crawl/fetches/part-00000.parquet", fetches[:6], FETCH_SCHEMA)
    _write(root / "crawl/fetches/part-00001.parquet", fetches[6:], FETCH_SCHEMA)
    truth["fetches"] = fetches

    # docs (before filtering) and filtered (with the optional wiki_stripped_chars column)
    langs = [
        ("en", 0.99),
        ("en", 1.0),
        ("en", 0.65),
        ("de", 0.97),
        ("es", 0.5),
        ("en", 0.0),
        (None, None),
        ("fr", 0.049),
        ("en", 0.95),
        ("de", 0.999),
    ]
    overlaps = [None, 0.0, 0.3, None, None, 0.95, None, None, 1.0, None]
    docs = [
        _doc(i, lg, sc, ov) for i, ((lg, sc), ov) in enumerate(zip(langs, overlaps, strict=True))
    ]
    _write(root / "docs/part-00000.parquet", docs[:4], DOCS_SCHEMA)
    _write(root / "docs/part-00001.parquet", docs[4:], DOCS_SCHEMA)
    truth["docs"] = docs
    filtered = docs[:3] + docs[8:]
    stripped = [0, 50, 0, 7, 0]
    ftable = pa.Table.from_pylist(filtered, schema=DOCS_SCHEMA).append_column(
        "wiki_stripped_chars", pa.array(stripped, pa.int32())
    )
    (root / "filtered").mkdir()
    pq.write_table(ftable, root / "filtered/part-00000.parquet")
    truth["filtered"] = [
        {**d, "wiki_stripped_chars": s} for d, s in zip(filtered, stripped, strict=True)
    ]

    # shards: 60 domains with tied counts (tie-break by name, top-50 cut), lengths and karma
    # over many bins, a negative karma, and a hostile domain name.
    shard_rows = []
    j = 0
    for d in range(60):
        domain = f"dom{d:02d}.test" if d != 59 else EVIL
        for _ in range(d % 7 + 1):
            n = [1, 2, 3, 37, 100, 999, 4000, 25_000][j % 8] + (j * 13) % 5
            karma = [-4, 0, 3, 3, 8, 150, 99_999, 5][j % 8] + j % 3
            shard_rows.append(
                {
                    "id": f"id{j:04d}",
                    "url": f"http://{domain}/{j}",
                    "domain": domain,
                    "karma": karma,
                    "subreddits": ["a"],
                    "lang": "en",
                    "n_tokens": n,
                    "tokens": [7] * (n - 1) + [50256],
                    "text": "t",
                }
            )
            j += 1
    schema = shard_schema(50257, include_text=True)
    split = {
        "train-00000-of-00002.parquet": shard_rows[: len(shard_rows) // 2],
        "train-00001-of-00002.parquet": shard_rows[len(shard_rows) // 2 : -10],
        "val-00000-of-00001.parquet": shard_rows[-10:],
    }
    entries = []
    for name, rows in split.items():
        _write(root / "shards" / name, rows, schema)
        entries.append(
            {
                "path": name,
                "rows": len(rows),
                "split": name.split("-")[0],
                "tokens": sum(r["n_tokens"] for r in rows),
                "bytes": (root / "shards" / name).stat().st_size,
                "sha256": "0" * 64,
            }
        )
    _write(root / "shards/stale-00009.parquet", shard_rows[:3], schema)  # not in the manifest
    truth["shards"] = shard_rows
    manifest = {
        "name": "synthetic",
        "config_fingerprint": "f00dfeed",
        "code_version": "0.1.0",
        "schema_version": 1,
        "columns": schema.names,
        "shards": entries,
        "split": {"method": "blake2b(id) < val_fraction", "shuffle_seed": 1, "val_fraction": 0.1},
        "tokenizer": {
            "name": "r50k_base",
            "vocab_size": 50257,
            "eot_id": 50256,
            "token_dtype": "uint16",
            "ranks_sha256": "x",
        },
        "totals": {
            "rows": len(shard_rows),
            "tokens": sum(r["n_tokens"] for r in shard_rows),
            "bytes": sum(e["bytes"] for e in entries),
        },
    }
    (root / "shards/manifest.json").write_text(json.dumps(manifest))
    truth["manifest"] = manifest

    # funnel.json agrees with the ledger (dropped) and with the other files (in/out)
    funnel = {}
    for stage in STAGES:
        dropped = Counter(r["reason"] for r in truth["ledger"].get(stage, []))
        out = {"crawl": 6, "shards": len(shard_rows)}.get(stage, 20)
        funnel[stage] = {
            "in": out + sum(dropped.values()),
            "out": out,
            "dropped": dict(sorted(dropped.items())),
        }
    (root / "funnel.json").write_text(json.dumps(funnel, indent=2))
    truth["funnel"] = funnel

    # done markers (crawl with timings) and progress files (extract only)
    markers = {
        ("crawl", "part-00000"): {
            "in": 6,
            "out": 4,
            "extra": {"crawl_seconds": 1.5, "cpu_seconds": 0.5},
        },
        ("crawl", "part-00001"): {
            "in": 5,
            "out": 2,
            "extra": {"crawl_seconds": 0.5, "cpu_seconds": 0.25},
        },
        ("extract", "part-00000"): {"in": 4, "out": 4, "extra": {"tokens": 10}},
        ("harvest_file", "RS_x.zst-00"): {"in": 11, "out": 11, "extra": {}},
    }
    for (step, part), st in markers.items():
        path = root / "_done" / step / f"{part}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        stats = {"stage": step, "part": part, "dropped": {}, "outputs": [], **st}
        path.write_text(json.dumps({"config": "c", "version": 1, "stats": stats}))
    truth["markers"] = markers
    progress = {
        "part-00000": {
            "started": 1000.0,
            "updated": 1004.0,
            "done": 40,
            "total": 40,
            "finished": True,
        },
        "part-00001": {
            "started": 1001.0,
            "updated": 1011.0,
            "done": 60,
            "total": 60,
            "finished": True,
        },
    }
    for part, rec in progress.items():
        path = root / "_progress" / "extract" / f"{part}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
    truth["progress"] = progress

    overlap = {
        "eval_sets": {
            "lambada": {
                "ngrams": 1000,
                "ngrams_found": 12,
                "percent": 1.2,
                "examples": 50,
                "examples_with_overlap": 3,
                "top_documents": [{"id": "d0001", "url": "http://s1.test/a", "ngrams": 7}],
            },
            "cbt": {
                "ngrams": 500,
                "ngrams_found": 0,
                "percent": 0.0,
                "examples": 20,
                "examples_with_overlap": 0,
                "top_documents": [],
            },
        }
    }
    (root / "overlap.json").write_text(json.dumps(overlap))
    truth["overlap"] = overlap
    return truth


# --- reading the page back ------------------------------------------------------------------


class _Cells(HTMLParser):
    """Every element with a data-value attribute, its data-* attributes and its text; the
    ids and classes of the chart containers."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []
        self.charts: dict[str, str] = {}
        self._open: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "chart" in a.get("class", "").split():
            self.charts[a["id"]] = a["class"]
        if "data-value" in a:
            cell = {k[5:]: v for k, v in a.items() if k.startswith("data-")}
            cell["text"] = ""
            self._open.append(cell)
            self.cells.append(cell)

    def handle_data(self, data: str) -> None:
        for cell in self._open:
            cell["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "span") and self._open:
            self._open.pop()


def parse_page(page: str) -> _Cells:
    p = _Cells()
    p.feed(page)
    return p


def funnel_from_cells(cells: list[dict[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in cells:
        if "stage" not in c or "field" not in c:
            continue
        value = int(c["value"])
        assert int(c["text"].replace(",", "")) == value  # the shown number is the same
        st = out.setdefault(c["stage"], {"dropped": {}})
        if c["field"] == "dropped":
            st["dropped"][c["reason"]] = value
        elif c["field"] == "by_source":
            st.setdefault("by_source", {})[c["source"]] = value
        elif c["field"] in ("in", "out"):
            st[c["field"]] = value
        else:
            assert c["field"] == "dropped_total"
            st["_total"] = value
    for st in out.values():
        assert st.pop("_total") == sum(st["dropped"].values())
    return out


# --- checks shared with the demo test (test_report_browser.py) ------------------------------


def check_demo_report(build: Path) -> dict[str, Any]:
    """Run the report on a demo build and check it against the build's own files."""
    out = report.run(build)
    assert out == build / "report"
    summary = json.loads((out / "summary.json").read_text())
    funnel = json.loads((build / "funnel.json").read_text())
    manifest = json.loads((build / "shards" / "manifest.json").read_text())
    assert summary["funnel"] == funnel
    assert summary["warnings"] == []
    lengths = summary["lengths"]
    assert sum(lengths["histogram"]["counts"]) + lengths["histogram"]["outside"] == lengths["count"]
    assert lengths["count"] == manifest["totals"]["rows"] == funnel["shards"]["out"]
    assert lengths["sum"] == manifest["totals"]["tokens"]
    assert summary["domains"]["tokens"] == manifest["totals"]["tokens"]
    assert summary["domains"]["docs"] == manifest["totals"]["rows"]
    if summary["domains"]["distinct"] <= report.summary.TOP_DOMAINS:
        assert (
            sum(d["tokens"] for d in summary["domains"]["top_by_tokens"])
            == manifest["totals"]["tokens"]
        )
    for stage, figures in funnel.items():
        got = {r: v["count"] for r, v in summary["drops"].get(stage, {}).items()}
        assert got == figures["dropped"], stage
    assert summary["crawl"]["fetches"] == funnel["crawl"]["in"]
    assert summary["language"]["docs"] == funnel["extract"]["out"]
    dup = summary["duplicates"]["drops"]
    assert dup == {r: funnel["dedup"]["dropped"].get(r, 0) for r in dup}
    assert summary["manifest"]["totals"] == manifest["totals"]
    assert summary["manifest"]["n_shards"] == len(manifest["shards"])
    page = (out / "index.html").read_text()
    assert funnel_from_cells(parse_page(page).cells) == funnel
    # rerun: the same bytes
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    report.run(build)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in before} == before
    return summary


# --- tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    truth = make_build(root)
    out = report.run(root)
    summary = json.loads((out / "summary.json").read_text())
    return root, truth, summary, (out / "index.html").read_text()


def _bin(value: float, edges: list[float], last_closed: bool) -> int | None:
    for i in range(len(edges) - 1):
        if edges[i] <= value < edges[i + 1] or (
            last_closed and i == len(edges) - 2 and value == edges[-1]
        ):
            return i
    return None


def _expect_hist(values: list[float], hist: dict[str, Any], last_closed: bool) -> None:
    edges = hist["edges"]
    assert edges == sorted(edges) and len(hist["counts"]) == len(edges) - 1
    counts = [0] * (len(edges) - 1)
    outside = 0
    for v in values:
        i = _bin(v, edges, last_closed)
        if i is None:
            outside += 1
        else:
            counts[i] += 1
    assert hist["counts"] == counts
    assert hist["outside"] == outside
    assert sum(hist["counts"]) + hist["outside"] == len(values)


def test_package_contract():
    assert report.STAGE == "report" and report.VERSION == 1
    assert report.__doc__ and "Reads:" in report.__doc__ and "Writes:" in report.__doc__
    assert callable(report.run) and callable(report.summarize)


def test_funnel_and_manifest(synthetic):
    _, truth, s, _ = synthetic
    assert s["funnel"] == truth["funnel"]
    m = truth["manifest"]
    assert s["corpus"] == {"name": "synthetic", "config_fingerprint": "f00dfeed"}
    assert s["manifest"]["totals"] == m["totals"]
    assert s["manifest"]["tokenizer"] == m["tokenizer"]
    assert s["manifest"]["split"] == m["split"]
    assert s["manifest"]["n_shards"] == 3
    assert s["manifest"]["by_split"] == {
        "train": {
            "shards": 2,
            "rows": m["shards"][0]["rows"] + m["shards"][1]["rows"],
            "tokens": m["shards"][0]["tokens"] + m["shards"][1]["tokens"],
            "bytes": m["shards"][0]["bytes"] + m["shards"][1]["bytes"],
        },
        "val": {
            "shards": 1,
            "rows": 10,
            "tokens": m["shards"][2]["tokens"],
            "bytes": m["shards"][2]["bytes"],
        },
    }
    assert s["warnings"] == []


def test_drop_reasons_counts_and_smallest_keys(synthetic):
    _, truth, s, _ = synthetic
    assert set(s["drops"]) == set(truth["ledger"])
    for stage, rows in truth["ledger"].items():
        expect = {}
        for reason in sorted({r["reason"] for r in rows}):
            mine = sorted((r["key"], r["detail"] or "") for r in rows if r["reason"] == reason)
            expect[reason] = {
                "count": len(mine),
                "samples": [{"key": k, "detail": d} for k, d in mine[:5]],
            }
        assert s["drops"][stage] == expect, stage
    # spelled out once: the 5 smallest low_karma keys come from both parts
    assert [x["key"] for x in s["drops"]["harvest"]["low_karma"]["samples"]] == [
        "p001",
        "p002",
        "p003",
        "p004",
        "p009",
    ]
    assert s["drops"]["harvest"]["self_post"]["samples"][0] == {"key": "p005", "detail": ""}
    assert s["drops"]["extract"] == {}


def test_lengths_karma_domains(synthetic):
    _, truth, s, _ = synthetic
    rows = truth["shards"]  # the manifest's shards only: the stale file is not counted
    lengths = [r["n_tokens"] for r in rows]
    assert s["lengths"]["count"] == len(rows) == truth["manifest"]["totals"]["rows"]
    assert s["lengths"]["sum"] == sum(lengths)
    assert s["lengths"]["mean"] == round(sum(lengths) / len(lengths), 4)
    assert s["lengths"]["median"] == round(float(np.quantile(lengths, 0.5)), 4)
    assert s["lengths"]["p90"] == round(float(np.quantile(lengths, 0.9)), 4)
    assert (s["lengths"]["min"], s["lengths"]["max"]) == (min(lengths), max(lengths))
    _expect_hist(lengths, s["lengths"]["histogram"], last_closed=False)
    assert s["lengths"]["histogram"]["outside"] == 0

    karma = [r["karma"] for r in rows]
    _expect_hist(karma, s["karma"]["histogram"], last_closed=False)
    assert s["karma"]["histogram"]["counts"][0] == sum(k < 0 for k in karma) > 0
    assert s["karma"]["histogram"]["labels"][0] == "<0"
    assert s["karma"]["median"] == round(float(np.quantile(karma, 0.5)), 4)
    assert s["karma"]["p90"] == round(float(np.quantile(karma, 0.9)), 4)

    docs: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    for r in rows:
        docs[r["domain"]] += 1
        tokens[r["domain"]] += r["n_tokens"]
    d = s["domains"]
    assert (d["distinct"], d["docs"], d["tokens"]) == (60, len(rows), sum(lengths))
    by_docs = sorted(docs, key=lambda k: (-docs[k], k))[:50]
    by_tok = sorted(tokens, key=lambda k: (-tokens[k], k))[:50]
    assert d["top_by_docs"] == [
        {"domain": k, "docs": docs[k], "tokens": tokens[k]} for k in by_docs
    ]
    assert d["top_by_tokens"] == [
        {"domain": k, "docs": docs[k], "tokens": tokens[k]} for k in by_tok
    ]
    assert len(d["top_by_docs"]) == 50


def test_language_and_wikipedia(synthetic):
    _, truth, s, _ = synthetic
    docs = truth["docs"]
    lang = s["language"]
    assert lang["docs"] == len(docs)
    counts = Counter(d["lang"] if d["lang"] is not None else "(none)" for d in docs)
    assert {r["lang"]: r["docs"] for r in lang["labels"]} == counts
    assert [r["lang"] for r in lang["labels"]] == ["en", "de", "(none)", "es", "fr"]
    scores = [float(np.float32(d["lang_score"])) for d in docs if d["lang_score"] is not None]
    _expect_hist(scores, lang["lang_score"], last_closed=True)
    assert lang["lang_score"]["missing"] == 1
    # 0.97, 0.99, 0.999 and 1.0 (the top bin is closed); float32(0.95) lies just below 0.95
    assert lang["lang_score"]["counts"][-2:] == [1, 4]

    w = s["wikipedia"]
    assert w["dropped"] == {"wikipedia": 2, "wikipedia_copy": 1}
    ov = [float(np.float32(d["wiki_overlap"])) for d in docs if d["wiki_overlap"] is not None]
    _expect_hist(ov, w["overlap"]["docs"], last_closed=True)
    assert w["overlap"]["docs"]["count"] == 4 and w["overlap"]["docs"]["missing"] == 6
    fov = [
        float(np.float32(d["wiki_overlap"]))
        for d in truth["filtered"]
        if d["wiki_overlap"] is not None
    ]
    _expect_hist(fov, w["overlap"]["filtered"], last_closed=True)
    assert w["stripped"]["docs"] is None  # docs/ has no wiki_stripped_chars column
    f = truth["filtered"]
    chars = sum(d["n_chars"] for d in f)
    assert w["stripped"]["filtered"] == {
        "docs": 5,
        "docs_stripped": 2,
        "stripped_chars": 57,
        "chars": chars,
        "share_chars": round(57 / (57 + chars), 6),
        "share_docs": 0.4,
    }


def test_duplicates_crawl_eval_throughput(synthetic):
    _, truth, s, _ = synthetic
    dedup = truth["ledger"]["dedup"]
    kept = Counter(r["detail"] for r in dedup)
    sizes = Counter(1 + n for n in kept.values())
    d = s["duplicates"]
    assert d["drops"] == {"exact_duplicate": 4, "near_duplicate": 3}
    assert d["clusters"] == 4 and d["docs_in_clusters"] == 4 + len(dedup)
    assert d["sizes"] == [{"size": k, "clusters": sizes[k]} for k in sorted(sizes)]
    assert d["sizes"] == [
        {"size": 2, "clusters": 2},
        {"size": 3, "clusters": 1},
        {"size": 4, "clusters": 1},
    ]
    assert d["largest"][0] == {"kept_id": "keepA", "size": 4}

    f = truth["fetches"]
    status = Counter("none" if r["status"] is None else str(r["status"]) for r in f)
    error = Counter("ok" if r["error"] is None else r["error"] for r in f)
    c = s["crawl"]
    assert c["fetches"] == len(f)
    assert {r["status"]: r["count"] for r in c["by_status"]} == status
    assert {r["error"]: r["count"] for r in c["by_error"]} == error
    assert c["by_status"][0] == {"status": "200", "count": 6}

    assert s["eval_overlap"] == truth["overlap"]

    steps = {e["step"]: e for e in s["throughput"]["steps"]}
    assert list(steps) == ["harvest_file", "crawl", "extract"]  # pipeline order, step after stage
    assert steps["crawl"]["parts"] == 2 and steps["crawl"]["in"] == 11
    assert steps["crawl"]["seconds"] == 2.0 and steps["crawl"]["cpu_seconds"] == 0.75
    assert steps["crawl"]["items_per_s"] == 5.5
    assert steps["crawl"]["progress"] is None
    assert steps["extract"]["items_per_s"] is None  # no timing in its marker
    p = steps["extract"]["progress"]
    assert p["items"] == 100 and p["parts"] == 2 and p["finished"] == 2
    assert p["wall_seconds"] == 11.0 and p["part_seconds"] == 14.0
    assert p["items_per_s_wall"] == round(100 / 11, 2)
    assert p["items_per_s_part"] == round(100 / 14, 2)


def test_page_tables_charts_and_escaping(synthetic):
    _, truth, s, page = synthetic
    parsed = parse_page(page)
    assert funnel_from_cells(parsed.cells) == truth["funnel"]
    # top domains table: the figures of the summary
    shown = {
        (c["domain"], c["field"]): int(c["value"]) for c in parsed.cells if c.get("by") == "docs"
    }
    for r in s["domains"]["top_by_docs"]:
        assert shown[(r["domain"], "docs")] == r["docs"]
        assert shown[(r["domain"], "tokens")] == r["tokens"]
    # manifest totals and eval overlap
    totals = {c["manifest"]: int(c["value"]) for c in parsed.cells if "manifest" in c}
    assert totals == truth["manifest"]["totals"]
    ev = {(c["eval-set"], c["field"]): c["value"] for c in parsed.cells if "eval-set" in c}
    assert ev[("lambada", "ngrams_found")] == "12" and ev[("cbt", "examples")] == "20"
    # charts: stable ids, every one with data in this build
    expected = {
        "funnel",
        "drops",
        "crawl-status",
        "crawl-errors",
        "lang-labels",
        "lang-score",
        "lengths",
        "domains-docs",
        "domains-tokens",
        "karma",
        "dup-clusters",
        "wiki-overlap",
        "throughput",
    }
    assert set(parsed.charts) == {f"chart-{n}" for n in expected}
    assert all("chart-empty" not in cls for cls in parsed.charts.values())
    assert page.count("Plotly.newPlot(") == len(expected)
    # plotly.js inline exactly once, nothing fetched from elsewhere
    bundle = plotly.offline.get_plotlyjs()
    assert page.count(bundle[:300]) == 1 and bundle in page
    assert "<script src" not in page and 'src="http' not in page
    # the hostile domain and ledger key are shown, escaped, never as markup
    assert EVIL not in page
    assert html.escape(EVIL, quote=True) in page


def test_rerun_is_byte_identical_and_summary_is_location_free(synthetic, tmp_path):
    root, _, _, _ = synthetic
    first = {n: (root / "report" / n).read_bytes() for n in ("summary.json", "index.html")}
    report.run(root)
    assert {n: (root / "report" / n).read_bytes() for n in first} == first
    copy = tmp_path / "elsewhere"
    shutil.copytree(root, copy)
    shutil.rmtree(copy / "report")
    report.run(copy)
    assert (copy / "report/summary.json").read_bytes() == first["summary.json"]
    assert str(copy.resolve()) in (copy / "report/index.html").read_text()


def test_empty_folder_gives_a_page_of_notes(tmp_path):
    out = report.run(tmp_path)
    s = json.loads((out / "summary.json").read_text())
    assert s["funnel"] is None and s["manifest"] is None and s["eval_overlap"] is None
    assert s["lengths"]["count"] == 0 and s["lengths"]["median"] is None
    assert sum(s["lengths"]["histogram"]["counts"]) == 0
    assert s["drops"] == {} and s["crawl"]["fetches"] == 0 and s["throughput"]["steps"] == []
    page = (out / "index.html").read_text()
    parsed = parse_page(page)
    assert parsed.charts and all("chart-empty" in c for c in parsed.charts.values())
    assert "Plotly.newPlot(" not in page and "not computed" in page and "no data" in page
    assert page.rstrip().endswith("</html>")


def test_empty_parts_and_damage_do_not_crash(tmp_path):
    root = tmp_path
    for rel, schema in [
        ("ledger/filter/part-00000.parquet", LEDGER_SCHEMA),
        ("crawl/fetches/part-00000.parquet", FETCH_SCHEMA),
        ("docs/part-00000.parquet", DOCS_SCHEMA),
        ("filtered/part-00000.parquet", DOCS_SCHEMA),
    ]:
        _write(root / rel, [], schema)
    (root / "docs/part-00001.parquet").write_bytes(b"not parquet at all")
    funnel = {st: {"in": 0, "out": 0, "dropped": {}} for st in STAGES}
    funnel["filter"]["dropped"] = {"too_short": 2}  # the ledger says 0: a warning, not a crash
    funnel["dedup"]["dropped"] = {"near_duplicate": 1}  # no ledger/dedup at all: a warning
    (root / "funnel.json").write_text(json.dumps(funnel))
    (root / "shards").mkdir()
    (root / "shards/manifest.json").write_text(
        json.dumps(
            {
                "name": "empty",
                "config_fingerprint": "0",
                "shards": [],
                "totals": {"rows": 0, "tokens": 0},
            }
        )
    )
    (root / "overlap.json").write_text("[1, 2]")  # not the expected shape
    out = report.run(root)
    s = json.loads((out / "summary.json").read_text())
    assert s["funnel"] == funnel
    assert s["drops"] == {"filter": {}}
    assert s["lengths"]["count"] == 0 and s["domains"]["distinct"] == 0
    assert s["language"]["docs"] == 0 and s["language"]["labels"] == []
    assert s["wikipedia"]["overlap"]["docs"]["count"] == 0
    assert s["eval_overlap"] is None
    assert any(w.startswith("docs/part-00001.parquet: unreadable") for w in s["warnings"])
    assert any("ledger/filter counts" in w for w in s["warnings"])
    assert "ledger/dedup: missing, funnel.json counts drops" in s["warnings"]
    assert any("overlap.json" in w for w in s["warnings"])
    page = (out / "index.html").read_text()
    parsed = parse_page(page)
    assert funnel_from_cells(parsed.cells) == {k: v for k, v in funnel.items()}
    assert "chart-empty" in parsed.charts["chart-funnel"]  # 0 items everywhere: a note
    assert 'id="warnings"' in page


def test_bins():
    s = report.summary
    assert s.LENGTH_EDGES[:12] == [0, 1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20]
    assert s.LENGTH_EDGES[-2:] == [10**7, 2**31]
    assert all(a < b for a, b in zip(s.LENGTH_EDGES, s.LENGTH_EDGES[1:], strict=False))
    assert s.KARMA_EDGES == [-(2**31), *s.LENGTH_EDGES]
    assert s.SCORE_EDGES[0] == 0.0 and s.SCORE_EDGES[-1] == 1.0 and len(s.SCORE_EDGES) == 21
    h = s.IntDistribution()
    h.add(pa.array([0, 1, 9, 10, 12, 10**7, 2**31 - 1, None]))
    hist = h.histogram(s.LENGTH_EDGES)
    assert hist["labels"][:3] == ["0", "1", "2"] and hist["labels"][8] == "10-12"
    assert hist["labels"][-1] == ">=10000000" and hist["counts"][-1] == 2
    assert hist["counts"][7] == 1 and hist["counts"][8] == 2 and h.missing == 1


def test_report_of_local_demo_out_copy(tmp_path):
    """Dev convenience: the same checks on a copy of a local demo-out (the browser test runs
    them on a fresh demo build)."""
    if not (DEMO_OUT / "shards" / "manifest.json").is_file():
        pytest.skip(
            "no local demo-out (run `webtext demo`); test_report_browser checks a fresh demo"
        )
    build = tmp_path / "demo"
    shutil.copytree(DEMO_OUT, build, ignore=shutil.ignore_patterns("warc", "report"))
    check_demo_report(build)
