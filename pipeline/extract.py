"""extract stage: WARC responses -> docs/<part>.parquet (text, metadata, language, signals).

Per fetched page: read the response record at its WARC offset, decode (HTTP charset, meta,
detection), extract the main text with trafilatura (its own deduplication off: it keeps a
process-wide cache, which would make the output depend on the order and batching of pages),
under a per-document time cap, then language ID on a prefix, quality signals and the GPT-2
token count. Pages are processed in worker processes that load the models once.

A part that re-runs because its inputs changed (a new month's links and fetch rows) extracts
only the pages it has no earlier outcome for; pipeline/extract_previous.py says when the
earlier result is trusted. docs/_index/<part>.parquet records the fetch row of every page.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trafilatura

from pipeline import stage
from pipeline.config import CorpusConfig, ExtractConfig, TokenizerConfig
from pipeline.extract_previous import INDEX_SCHEMA, KEY_FIELDS, index_path, load_previous
from pipeline.io import read_table, rows_to_table, write_table
from pipeline.langid import identify_with, load_model
from pipeline.ledger import Ledger, StageStats
from pipeline.quality import signals
from pipeline.tokenize import get_encoding
from pipeline.warc_read import DecodeError, decode_html, read_response
from schemas.records import DOCS_SCHEMA, doc_id

log = logging.getLogger(__name__)

VERSION = 2  # 2: warc_error details name the WARC file relative to the root
STAGE = "extract"
# Extraction cost grows with page size; a page bigger than this is not an article. The crawl
# caps downloads too (crawl.max_bytes); this guards WARCs written by other tools.
MAX_HTML_CHARS = 20_000_000


class ExtractTimeout(BaseException):
    """Raised by the alarm handler. A BaseException so that library code catching Exception
    (trafilatura catches ValueError/TypeError, htmldate more) cannot swallow it."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What a worker needs, picklable: the extract and tokenizer sections."""

    extract: ExtractConfig
    tokenizer: TokenizerConfig

    def trafilatura_kwargs(self) -> dict[str, Any]:
        e = self.extract
        return {
            "favor_precision": e.favor_precision,
            "favor_recall": e.favor_recall,
            "include_comments": e.include_comments,
            "include_tables": e.include_tables,
            "fast": e.fast,
            "deduplicate": False,
            "with_metadata": e.with_metadata,
            "date_extraction_params": {"extensive_search": e.extensive_date_search},
        }


# ---------------------------------------------------------------------------------------------
# per-record functions


def _strip_title(text: str, title: str | None) -> str:
    """Drop a leading headline line that repeats the title: the title has its own column,
    and article bodies (the benchmark's gold, GPT-2's extractors) do not include it."""
    first, sep, rest = text.partition("\n")
    first = first.strip()
    if title and sep and first and (first in title or title.startswith(first)):
        return rest.strip()
    return text


def run_trafilatura(
    html: str, url: str | None, settings: Settings
) -> tuple[str | None, str | None, str | None]:
    """(text, title, date) of one decoded page; text None when nothing was extracted."""
    doc = trafilatura.bare_extraction(
        html[:MAX_HTML_CHARS], url=url, **settings.trafilatura_kwargs()
    )
    if doc is None or isinstance(doc, dict):  # dict only with the deprecated as_dict
        return None, None, None
    title = doc.title or None
    text = (doc.text or "").strip()
    if text and settings.extract.strip_title:
        text = _strip_title(text, title)
    return (text or None), title, (doc.date or None)


def extract_document(
    html: str | bytes, url: str | None, cfg: ExtractConfig
) -> tuple[str | None, str | None, str | None]:
    """(text, title, date) of one page with the given options, no time cap."""
    if isinstance(html, bytes):
        html, _ = decode_html(html)
    if not html.strip():
        return None, None, None
    return run_trafilatura(html, url, Settings(cfg, TokenizerConfig()))


def extract_text(html: str | bytes, url: str | None = None) -> str | None:
    """Main text of one HTML page with the default config; None when nothing is extracted
    (empty page, binary body, no main content). No time cap: callers wanting one use
    `time_cap`."""
    try:
        return extract_document(html, url, ExtractConfig())[0]
    except DecodeError:
        return None


@contextmanager
def time_cap(seconds: float) -> Iterator[None]:
    """Raise ExtractTimeout if the body runs longer than `seconds`.

    SIGALRM interrupts pure-Python loops (where trafilatura spends its time); it only works
    in a process's main thread, so elsewhere the body runs uncapped and the driver uses
    worker processes instead.
    """
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise ExtractTimeout()

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------------
# the per-page work done in workers

_worker: dict[str, Any] = {}


def _init_worker(settings: Settings) -> None:
    _worker["settings"] = settings
    _worker["model"] = load_model(settings.extract.lang_model)
    _worker["enc"] = get_encoding(settings.tokenizer)


def process_page(item: dict[str, Any]) -> dict[str, Any]:
    """One fetch row (with `warc_path` absolute) -> {"doc": {...}} or {"drop": (reason,
    detail)}. Never raises for bad pages."""
    settings: Settings = _worker["settings"]
    url = item["url"]
    try:
        resp = read_response(item["warc_path"], item["warc_offset"], item["warc_length"])
    except Exception as err:  # noqa: BLE001 - a broken record costs one ledger row
        # Name the file relative to the root: the same inputs give the same ledger anywhere.
        msg = f"{type(err).__name__}: {err}".replace(str(item["warc_path"]), item["warc_file"])
        return {"drop": ("warc_error", msg[:300])}
    ctype = item.get("content_type") or resp.content_type
    try:
        html, _codec = decode_html(resp.body, ctype)
    except DecodeError as err:
        return {"drop": ("decode_error", str(err))}
    if not html.strip():
        return {"drop": ("extract_empty", "empty body")}
    try:
        with time_cap(settings.extract.timeout_s):
            text, title, date = run_trafilatura(html, item.get("final_url") or url, settings)
    except ExtractTimeout:
        return {"drop": ("extract_timeout", f"> {settings.extract.timeout_s:g} s")}
    except RecursionError:
        return {"drop": ("extract_error", "RecursionError: nesting too deep")}
    except Exception as err:  # noqa: BLE001 - a library bug on one page must not cost the part
        return {"drop": ("extract_error", f"{type(err).__name__}: {err}"[:300])}
    if not text:
        return {"drop": ("extract_empty", "no main text")}
    lang, score = identify_with(_worker["model"], text, settings.extract.lang_prefix_chars)
    n_tokens = len(_worker["enc"].encode_ordinary(text))
    row = {
        "title": title,
        "date": date,
        "text": text,
        "lang": lang,
        "lang_score": score,
    }
    row.update(signals(text, n_tokens=n_tokens))
    return {"doc": row}


# ---------------------------------------------------------------------------------------------
# the part driver


def config_fingerprint(cfg: CorpusConfig) -> str:
    """Extract + tokenizer sections, minus `processes` (parallelism never changes output)."""
    blob = json.dumps(
        {
            "extract": cfg.extract.model_dump(mode="json", exclude={"processes"}),
            "tokenizer": cfg.tokenizer.model_dump(mode="json"),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _mp_context() -> mp.context.BaseContext:
    # fork is cheapest (workers inherit loaded modules) but unsafe once other threads exist
    # (a Prefect worker's); forkserver starts workers from a clean single-threaded server.
    if threading.active_count() == 1:
        return mp.get_context("fork")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.extract"])
    return ctx


def _results(items: list[dict[str, Any]], settings: Settings) -> Iterator[dict[str, Any]]:
    processes = settings.extract.processes
    inline = processes == 1 and threading.current_thread() is threading.main_thread()
    if inline or not items:
        _init_worker(settings)
        yield from map(process_page, items)
        return
    n = max(1, min(processes, len(items)))
    with _mp_context().Pool(n, initializer=_init_worker, initargs=(settings,)) as pool:
        # Small chunks: page costs vary 100x, large chunks would leave a core idle at the end.
        yield from pool.imap(process_page, items, chunksize=4)


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _work(
    links_part: Path,
    fetches_part: Path,
    root: Path,
    cfg: CorpusConfig,
    part: str,
    reuse: bool = True,
) -> StageStats:
    links = {
        r["url"]: r
        for r in read_table(
            links_part, ["url", "domain", "host", "karma", "subreddits", "first_seen", "title"]
        ).to_pylist()
    }
    fetches = [r for r in read_table(fetches_part).to_pylist() if r["error"] is None]
    fetches.sort(key=lambda r: r["url"])
    ledger = Ledger(root, STAGE, part)
    stats = StageStats(stage=STAGE, part=part, n_in=len(fetches))
    items = []
    for r in fetches:
        if r["url"] not in links:
            ledger.drop(r["url"], "missing_link", "url not in the links part")
        elif not r["warc_file"] or r["warc_offset"] is None:
            ledger.drop(r["url"], "warc_error", "fetch row without a WARC record")
        else:
            items.append({**r, "warc_path": str(root / r["warc_file"])})
    # Pages whose fetch row (and WARC file) are the ones the part's earlier run extracted keep
    # that outcome (pipeline/extract_previous.py); only the others are extracted now.
    previous = load_previous(root, STAGE, part, config_fingerprint(cfg), VERSION) if reuse else None
    earlier = [previous.outcome(item) if previous is not None else None for item in items]
    todo = [item for item, res in zip(items, earlier, strict=True) if res is None]
    if previous is not None:
        log.info(
            "%s/%s: %d pages, %d outcomes reused from the earlier run, %d to extract",
            STAGE,
            part,
            len(items),
            len(items) - len(todo),
            len(todo),
        )
    settings = Settings(cfg.extract, cfg.tokenizer)
    fresh = _results(todo, settings) if todo else iter(())
    docs = []
    for item, reused in zip(items, earlier, strict=True):
        res = reused if reused is not None else next(fresh)
        url = item["url"]
        if "drop" in res:
            ledger.drop(url, *res["drop"])
            continue
        link = links[url]
        final_url = item["final_url"] or url
        doc = {
            "id": doc_id(url),
            "url": url,
            "final_url": final_url,
            "domain": link["domain"],
            "host": link["host"] or _host(url),
            "karma": link["karma"],
            "subreddits": link["subreddits"] or [],
            "first_seen": link["first_seen"],
            "reddit_title": link["title"] or "",
            "wiki_overlap": None,
            **res["doc"],
        }
        docs.append(doc)
    if next(fresh, None) is not None:  # also lets the worker pool close
        raise AssertionError(f"{STAGE}/{part}: more extraction results than pages")
    docs.sort(key=lambda d: d["id"])
    out = root / "docs" / f"{part}.parquet"
    write_table(out, rows_to_table(docs, DOCS_SCHEMA))
    ledger_path = ledger.write()
    # Which fetch row each page's outcome came from, for the next run's reuse.
    index = index_path(root, part)
    write_table(index, rows_to_table([{k: i[k] for k in KEY_FIELDS} for i in items], INDEX_SCHEMA))
    stats.n_out = len(docs)
    stats.dropped.update(ledger.counts)
    stats.outputs = [str(p.relative_to(root)) for p in (out, ledger_path, index)]
    stats.extra["tokens"] = sum(d["n_tokens"] for d in docs)
    stats.extra["reused"] = len(items) - len(todo)
    stats.extra["extracted"] = len(todo)
    return stats


def run_part(
    links_part: Path, fetches_part: Path, root: Path, cfg: CorpusConfig, force: bool = False
) -> StageStats:
    """Extract one crawl part. Inputs fingerprinted: the links part, the fetches part and
    every WARC file its rows reference.

    When the part changed since an earlier complete extraction of it (same extract config and
    VERSION), pages whose fetch row and WARC file are unchanged keep their earlier outcome,
    joined with the new links part's metadata; only the other pages are extracted (the output
    is the same as a full extraction's). `force` extracts the whole part again."""
    root = Path(root)
    links_part, fetches_part = Path(links_part), Path(fetches_part)
    part = fetches_part.name.split(".")[0]
    warc_rel = read_table(fetches_part, ["warc_file", "error"]).to_pylist()
    warcs = sorted(
        {root / r["warc_file"] for r in warc_rel if r["error"] is None and r["warc_file"]}
    )
    inputs = [links_part, fetches_part, *[w for w in warcs if w.is_file()]]
    return stage.run_part(
        root=root,
        stage=STAGE,
        part=part,
        inputs=inputs,
        config_fp=config_fingerprint(cfg),
        version=VERSION,
        work=lambda: _work(links_part, fetches_part, root, cfg, part, reuse=not force),
        force=force,
    )
