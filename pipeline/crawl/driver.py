"""The crawl driver: one links part -> crawl subprocess -> fetch log, ledger and WARC files."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.config import CrawlConfig
from pipeline.core.errors import PartError
from pipeline.core.io import atomic_write_json, rows_to_table, write_table
from pipeline.core.ledger import Ledger, StageStats
from pipeline.core.reuse import marker_path
from pipeline.core.stage import run_marked
from pipeline.crawl.fallback import after_live_crawl
from pipeline.crawl.forkserver import ForkedProcess, get_server
from pipeline.crawl.heap import GC_STATS
from pipeline.crawl.previous import Previous, load_previous, next_warc
from pipeline.crawl.window import WINDOW_STATS
from schemas.records import CRAWL_ERRORS, FETCH_SCHEMA

# 2: robots.txt race fixed, disallowed pages no longer slip through
# 3: soft_404/parked dead pages, archive fallback, source/captured_at/live_error columns
VERSION = 3
STAGE = "crawl"

log = logging.getLogger(__name__)

__all__ = ["VERSION", "crawl_subprocess", "fetches_path", "finalize", "run_part", "warc_start_for"]


def fetches_path(root: Path, part: str) -> Path:
    return Path(root) / "crawl" / "fetches" / f"{part}.parquet"


def _ledger_path(root: Path, part: str) -> Path:
    return Path(root) / "ledger" / STAGE / f"{part}.parquet"


def _work_dir(root: Path, part: str) -> Path:
    return Path(root) / "crawl" / "_work" / part


def _links(links_part: Path) -> list[str]:
    urls = pq.read_table(links_part, columns=["url"]).column("url").to_pylist()
    return list(dict.fromkeys(urls))


def crawl_subprocess(
    links_part: Path,
    root: Path,
    part: str,
    cfg: CrawlConfig,
    archive: bool = True,
    summary: Path | None = None,
    timeout: float | None = None,
    warc_start: int | None = None,
) -> subprocess.Popen[bytes] | ForkedProcess:
    """Start the crawl subprocess (not waiting). Its log goes to root/crawl/logs/<part>.log.
    With `crawl.fork_server` it is forked from the fork server (pipeline/crawl/forkserver.py),
    which has Scrapy imported already.

    `warc_start`: the first WARC file number it may write; None: the subprocess takes
    warc_start_for's (after every file of the part, or the resumed attempt's own)."""
    work = _work_dir(root, part)
    work.mkdir(parents=True, exist_ok=True)
    cfg_path = work / "config.json"
    atomic_write_json(cfg_path, cfg.model_dump(mode="json"))
    cmd = [
        sys.executable,
        "-m",
        "pipeline.crawl",
        "--links",
        str(links_part),
        "--root",
        str(root),
        "--part",
        part,
        "--config",
        str(cfg_path),
    ]
    if summary is not None:
        cmd += ["--summary", str(summary)]
    if not archive:
        cmd.append("--no-archive")
    if warc_start is not None:
        cmd += ["--warc-start", str(warc_start)]
    # The driver's VERSION names the run in the journal header both sides check.
    cmd += ["--version", str(VERSION)]
    log_path = Path(root) / "crawl" / "logs" / f"{part}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    server = get_server() if cfg.fork_server else None
    if server is not None:
        try:
            return server.spawn([*cmd[3:], "--parent-pid", str(server.pid)], str(log_path))
        except OSError as e:
            log.warning("%s: crawl fork server failed (%s); starting the part cold", part, e)
    cmd += ["--parent-pid", str(os.getpid())]
    with open(log_path, "ab") as logf:
        return subprocess.Popen(
            cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def _log_tail(root: Path, part: str, n: int = 2000) -> str:
    p = Path(root) / "crawl" / "logs" / f"{part}.log"
    try:
        return p.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _utc(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


def _to_fetch_row(r: dict[str, Any]) -> dict[str, Any]:
    ts = r.get("fetched_at")
    captured = r.get("captured_at")
    if captured is None and r.get("error") is None and r.get("warc_file"):
        captured = ts  # a live page: captured when fetched
    return {
        "url": r["url"],
        "final_url": r.get("final_url"),
        "status": r.get("status"),
        "content_type": r.get("content_type"),
        "bytes": int(r.get("bytes") or 0),
        "fetched_at": datetime.fromtimestamp(ts / 1000, UTC) if ts is not None else None,
        "elapsed_ms": r.get("elapsed_ms"),
        "error": r.get("error"),
        "warc_file": r.get("warc_file"),
        "warc_offset": r.get("warc_offset"),
        "warc_length": r.get("warc_length"),
        "source": r.get("source") or "live",
        "captured_at": _utc(captured // 1000 * 1000) if captured is not None else None,
        "live_error": r.get("live_error"),
    }


def finalize(
    root: Path,
    part: str,
    links: list[str],
    rows: list[dict[str, Any]],
    previous: Previous | None = None,
    cfg: CrawlConfig | None = None,
) -> StageStats:
    """Journal rows (+ carried-over rows of an earlier result) -> fetch log + ledger + stats.
    Exactly one row per link: this crawl's outcome, else the earlier one re-judged against
    `cfg` (Previous.carried). Earlier rows of URLs no longer in `links` are dropped (their
    WARC records stay, unreferenced)."""
    by_url: dict[str, dict[str, Any]] = {}
    for r in rows:
        by_url.setdefault(r["url"], r)  # the journal never holds two rows; be safe anyway
    ledger = Ledger(root, STAGE, part)
    fetch_rows = []
    dropped: Counter[str] = Counter()
    by_source: Counter[str] = Counter()  # kept rows
    warc_files: set[str] = set()
    carried = rejudged = 0
    for url in sorted(links):
        if url not in by_url and previous is not None and url in previous.rows:
            carried += 1
            old, detail = previous.carried(url, cfg or CrawlConfig())
            if old != previous.rows[url]:
                rejudged += 1
            err = old["error"]
            if err is not None:
                dropped[err] += 1
                ledger.drop(url, err, detail)
            else:
                by_source[old["source"] or "live"] += 1
                if old["warc_file"]:
                    warc_files.add(old["warc_file"])
            fetch_rows.append(old)
            continue
        r = by_url.get(url) or {"url": url, "error": "other", "detail": "no outcome recorded"}
        err = r.get("error")
        if err is not None and err not in CRAWL_ERRORS:
            r = {**r, "detail": f"{err}: {r.get('detail', '')}", "error": "other"}
            err = "other"
        if err is not None:
            dropped[err] += 1
            detail = r.get("detail") or (f"status {r['status']}" if r.get("status") else "")
            ledger.drop(url, err, detail)
        else:
            by_source[r.get("source") or "live"] += 1
            if r.get("warc_file"):
                warc_files.add(r["warc_file"])
        fetch_rows.append(_to_fetch_row(r))
    out = fetches_path(root, part)
    write_table(out, rows_to_table(fetch_rows, FETCH_SCHEMA))
    ledger_path = ledger.write()
    root = Path(root)
    n_out = len(links) - sum(dropped.values())
    extra: dict[str, Any] = {
        "warc_files": len(warc_files),
        "by_source": dict(sorted(by_source.items())),
    }
    if cfg is not None:
        extra["kept_by"] = cfg.kept_by()
    if previous is not None:
        # Earlier WARC files stay outputs even when no row points into them any more.
        warc_files.update(previous.warc_files)
        extra |= {
            "warc_files": len(warc_files),
            "rejudged": rejudged,
            "carried_over": carried,
            "crawled_now": len(links) - carried,
            "removed_links": len(set(previous.rows) - set(links)),
        }
    return StageStats(
        stage=STAGE,
        part=part,
        n_in=len(links),
        n_out=n_out,
        dropped=dropped,
        outputs=sorted(
            [str(out.relative_to(root)), str(ledger_path.relative_to(root)), *sorted(warc_files)]
        ),
        extra=extra,
    )


def warc_start_for(root: Path, part: str, crawl_links: Path, cfg: CrawlConfig) -> int:
    """The first WARC file number this crawl writes: after every file of the part on disk,
    except when resuming an interrupted attempt of the same crawl, which continues its own
    files (its journal's header names their first number)."""
    from pipeline.crawl.journal import journal_path, read_journal
    from pipeline.crawl.runner import run_header

    jpath = journal_path(root, part)
    try:
        with open(jpath, encoding="utf-8") as f:
            start = int(json.loads(f.readline()).get("warc_start", 0))
    except (OSError, ValueError, AttributeError, TypeError):
        start = -1
    if start >= 0:
        header = run_header(crawl_links, cfg, VERSION, start)
        if read_journal(jpath, header) is not None:
            return start
    # Another crawl's journal (or none): start after everything, so the runner's cleanup of
    # the files it may write never reaches an existing one.
    jpath.unlink(missing_ok=True)
    return next_warc(root, part)


def run_part(
    links_part: Path,
    root: Path,
    cfg: CrawlConfig,
    force: bool = False,
    timeout: float | None = None,
) -> StageStats:
    """Crawl one links part into root/crawl/{fetches,warc}/ and root/ledger/crawl/.

    The archive is append-only (pipeline/crawl/previous.py): an earlier complete crawl of the
    part is carried over and re-judged against the current settings, and only what it lacks
    is fetched, into new WARC files. `force` crawls the whole part again, also into new files
    (the earlier ones stay on disk)."""
    from pipeline.crawl.journal import journal_path, read_journal
    from pipeline.crawl.runner import run_header

    links_part = Path(links_part)
    root = Path(root)
    part = links_part.name.split(".")[0]

    def work() -> StageStats:
        links = _links(links_part)
        previous = None
        if not force:
            previous = load_previous(
                root, STAGE, part, fetches_path(root, part), _ledger_path(root, part)
            )
        crawl_links = links_part
        if previous is not None:
            todo = previous.to_crawl(links, cfg, VERSION)
            log.info(
                "%s: %d links, %d carried over from the earlier crawl, %d to fetch",
                part,
                len(links),
                len(links) - len(todo),
                len(todo),
            )
            if not todo:
                # Nothing to fetch: no subprocess. The journal of an interrupted earlier
                # attempt is of no use any more; its WARC files stay (append-only).
                shutil.rmtree(_work_dir(root, part), ignore_errors=True)
                return finalize(root, part, links, [], previous, cfg)
            # The subprocess crawls a links file of just these URLs (deterministic bytes, so
            # a killed incremental crawl resumes from its journal like a full one).
            crawl_links = _work_dir(root, part) / "to_crawl.parquet"
            crawl_links.parent.mkdir(parents=True, exist_ok=True)
            write_table(crawl_links, pa.table({"url": pa.array(todo, pa.string())}))
        elif not links:
            return finalize(root, part, [], [], cfg=cfg)
        else:
            # The earlier result (if any) stops being one now, so a crawl killed midway is
            # never mistaken for it. Its WARC files stay: the new crawl writes after them.
            marker_path(root, STAGE, part).unlink(missing_ok=True)
        warc_start = warc_start_for(root, part, crawl_links, cfg)
        summary_path = _work_dir(root, part) / "summary.json"
        proc = crawl_subprocess(
            crawl_links, root, part, cfg, summary=summary_path, warc_start=warc_start
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise PartError(STAGE, part, f"crawl subprocess exceeded {timeout} s") from None
        except BaseException:
            # Interrupted driver (Ctrl-C, cancelled task): no crawl may outlive it; the journal
            # lets the next run resume.
            proc.kill()
            proc.wait()
            raise
        if rc != 0:
            raise PartError(STAGE, part, f"crawl subprocess exited {rc}: {_log_tail(root, part)}")
        rows = read_journal(
            journal_path(root, part), run_header(crawl_links, cfg, VERSION, warc_start)
        )
        if rows is None:
            raise PartError(STAGE, part, "crawl subprocess left no journal")
        # The one hook after the live crawl: dead-link judgement across the part's rows and
        # the archive fallback for dead links (new WARC files after the crawl's own).
        rows, dead_extra = after_live_crawl(root, part, links_part, rows, cfg)
        stats = finalize(root, part, links, rows, previous, cfg)
        stats.extra.update(dead_extra)
        try:
            summary = json.loads(summary_path.read_text())
        except (OSError, ValueError):
            summary = {}
        for key in (
            "resumed",
            "fetched_now",
            "kept_now",
            "crawl_seconds",
            "pages_per_s",
            "cpu_seconds",
            *GC_STATS,
            *WINDOW_STATS,
        ):
            if key in summary:
                stats.extra[key] = summary[key]
        # The journal has served; the fetch log is the record from now on.
        shutil.rmtree(_work_dir(root, part), ignore_errors=True)
        return stats

    return run_marked(
        root=root,
        step=STAGE,
        part=part,
        inputs=[links_part],
        config_fp=cfg.fingerprint(),
        version=VERSION,
        work=work,
        force=force,
    )
