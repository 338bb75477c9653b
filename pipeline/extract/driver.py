"""The extract driver: one crawl part's fetch rows -> docs part, ledger part and reuse index."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.core import stage
from pipeline.core.config import CorpusConfig
from pipeline.core.io import read_table, rows_to_table, write_table
from pipeline.core.ledger import Ledger, StageStats
from pipeline.core.progress import PartProgress
from pipeline.core.rowgroups import RowGroupWriter
from pipeline.core.tokenizer import get_encoding
from pipeline.extract.langid import identify_with, load_model
from pipeline.extract.previous import INDEX_SCHEMA, KEY_FIELDS, index_path, load_previous
from pipeline.extract.quality import signals
from pipeline.extract.text import ExtractTimeout, Settings, run_trafilatura, time_cap
from pipeline.extract.warc import DecodeError, decode_html, read_response
from schemas.records import DOCS_SCHEMA, doc_id

log = logging.getLogger(__name__)

# 2: warc_error details name the WARC file relative to the root
# 3: source and captured_at (archive fallback) carried from the fetch log
VERSION = 3
STAGE = "extract"

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
    # Pages are extracted in id order, the order of the docs part, so each document is written
    # as it comes (row groups as io.write_table makes them): no whole part of text in memory.
    ordered = sorted(items, key=lambda i: (doc_id(i["url"]), i["url"]))
    # Pages whose fetch row (and WARC file) are the ones the part's earlier run extracted keep
    # that outcome (pipeline/extract/previous.py); only the others are extracted now.
    previous = load_previous(root, STAGE, part, config_fingerprint(cfg), VERSION) if reuse else None
    earlier = [previous.outcome(item) if previous is not None else None for item in ordered]
    todo = [item for item, res in zip(ordered, earlier, strict=True) if res is None]
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
    progress = PartProgress(root, STAGE, part, total=len(items))
    out = root / "docs" / f"{part}.parquet"
    tokens = 0
    sources: Counter[str] = Counter()
    with RowGroupWriter(out, DOCS_SCHEMA) as writer:
        for item, reused in zip(ordered, earlier, strict=True):
            res = reused if reused is not None else next(fresh)
            progress.advance()
            url = item["url"]
            if "drop" in res:
                ledger.drop(url, *res["drop"])
                continue
            link = links[url]
            source = item.get("source") or "live"
            writer.add(
                {
                    "id": doc_id(url),
                    "url": url,
                    "final_url": item["final_url"] or url,
                    "domain": link["domain"],
                    "host": link["host"] or _host(url),
                    "karma": link["karma"],
                    "subreddits": link["subreddits"] or [],
                    "first_seen": link["first_seen"],
                    "reddit_title": link["title"] or "",
                    "wiki_overlap": None,
                    "source": source,
                    # An archive's capture time; not a live page's fetch time, which differs
                    # from one build to the next and would make two builds' shards differ.
                    "captured_at": item.get("captured_at") if source != "live" else None,
                    **res["doc"],
                }
            )
            tokens += res["doc"]["n_tokens"]
            sources[source] += 1
        if next(fresh, None) is not None:  # also lets the worker pool close
            raise AssertionError(f"{STAGE}/{part}: more extraction results than pages")
    ledger_path = ledger.write()
    # Which fetch row each page's outcome came from, for the next run's reuse (url order).
    index = index_path(root, part)
    write_table(index, rows_to_table([{k: i[k] for k in KEY_FIELDS} for i in items], INDEX_SCHEMA))
    stats.n_out = writer.rows
    stats.dropped.update(ledger.counts)
    stats.outputs = [str(p.relative_to(root)) for p in (out, ledger_path, index)]
    stats.extra["tokens"] = tokens
    stats.extra["reused"] = len(items) - len(todo)
    stats.extra["extracted"] = len(todo)
    stats.extra["by_source"] = dict(sorted(sources.items()))
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
    return stage.run_marked(
        root=root,
        step=STAGE,
        part=part,
        inputs=inputs,
        config_fp=config_fingerprint(cfg),
        version=VERSION,
        work=lambda: _work(links_part, fetches_part, root, cfg, part, reuse=not force),
        force=force,
    )
