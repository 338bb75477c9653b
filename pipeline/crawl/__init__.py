"""Crawl stage: Scrapy, one subprocess per links part.

`run_part(links_part, root, cfg)` is the per-part driver. It starts `python -m pipeline.crawl`
(the subprocess crawls and appends every outcome to a journal, archiving kept pages to WARC),
then turns the journal into the fetch log (exactly one row per link, sorted by url) and the
ledger. A killed crawl resumes from its journal: no link is fetched into the output twice and
none is lost. This module does not import Scrapy, so importing it costs nothing.
"""

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

import pyarrow.parquet as pq

from pipeline.config import CrawlConfig
from pipeline.errors import PartError
from pipeline.io import atomic_write_json, rows_to_table, write_table
from pipeline.ledger import Ledger, StageStats
from pipeline.stage import run_part as run_stage_part
from schemas.records import CRAWL_ERRORS, FETCH_SCHEMA

VERSION = 2  # 2: robots.txt race fixed, disallowed pages no longer slip through
STAGE = "crawl"

log = logging.getLogger(__name__)

__all__ = ["VERSION", "crawl_subprocess", "fetches_path", "finalize", "run_part"]


def fetches_path(root: Path, part: str) -> Path:
    return Path(root) / "crawl" / "fetches" / f"{part}.parquet"


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
) -> subprocess.Popen[bytes]:
    """Start the crawl subprocess (not waiting). Its log goes to root/crawl/logs/<part>.log."""
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
    cmd += ["--parent-pid", str(os.getpid())]
    log_path = Path(root) / "crawl" / "logs" / f"{part}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
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


def _to_fetch_row(r: dict[str, Any]) -> dict[str, Any]:
    ts = r.get("fetched_at")
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
    }


def finalize(root: Path, part: str, links: list[str], rows: list[dict[str, Any]]) -> StageStats:
    """Journal rows -> fetch log + ledger + stats. Exactly one row per link."""
    by_url: dict[str, dict[str, Any]] = {}
    for r in rows:
        by_url.setdefault(r["url"], r)  # the journal never holds two rows; be safe anyway
    ledger = Ledger(root, STAGE, part)
    fetch_rows = []
    dropped: Counter[str] = Counter()
    warc_files: set[str] = set()
    for url in sorted(links):
        r = by_url.get(url) or {"url": url, "error": "other", "detail": "no outcome recorded"}
        err = r.get("error")
        if err is not None and err not in CRAWL_ERRORS:
            r = {**r, "detail": f"{err}: {r.get('detail', '')}", "error": "other"}
            err = "other"
        if err is not None:
            dropped[err] += 1
            detail = r.get("detail") or (f"status {r['status']}" if r.get("status") else "")
            ledger.drop(url, err, detail)
        elif r.get("warc_file"):
            warc_files.add(r["warc_file"])
        fetch_rows.append(_to_fetch_row(r))
    out = fetches_path(root, part)
    write_table(out, rows_to_table(fetch_rows, FETCH_SCHEMA))
    ledger_path = ledger.write()
    root = Path(root)
    n_out = len(links) - sum(dropped.values())
    return StageStats(
        stage=STAGE,
        part=part,
        n_in=len(links),
        n_out=n_out,
        dropped=dropped,
        outputs=sorted(
            [str(out.relative_to(root)), str(ledger_path.relative_to(root)), *sorted(warc_files)]
        ),
        extra={"warc_files": len(warc_files)},
    )


def run_part(
    links_part: Path,
    root: Path,
    cfg: CrawlConfig,
    force: bool = False,
    timeout: float | None = None,
) -> StageStats:
    """Crawl one links part into root/crawl/{fetches,warc}/ and root/ledger/crawl/."""
    from pipeline.crawl.journal import journal_path, read_journal
    from pipeline.crawl.runner import run_header

    links_part = Path(links_part)
    root = Path(root)
    part = links_part.name.split(".")[0]

    def work() -> StageStats:
        links = _links(links_part)
        if not links:
            return finalize(root, part, [], [])
        summary_path = _work_dir(root, part) / "summary.json"
        proc = crawl_subprocess(links_part, root, part, cfg, summary=summary_path)
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
        rows = read_journal(journal_path(root, part), run_header(links_part, cfg, VERSION))
        if rows is None:
            raise PartError(STAGE, part, "crawl subprocess left no journal")
        stats = finalize(root, part, links, rows)
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
        ):
            if key in summary:
                stats.extra[key] = summary[key]
        # The journal has served; the fetch log is the record from now on.
        shutil.rmtree(_work_dir(root, part), ignore_errors=True)
        return stats

    return run_stage_part(
        root=root,
        stage=STAGE,
        part=part,
        inputs=[links_part],
        config_fp=cfg.fingerprint(),
        version=VERSION,
        work=work,
        force=force,
    )
