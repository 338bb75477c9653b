"""Reuse of a part's earlier crawl when its links part changed.

A scheduled build merges each new month's links into the existing links parts (partitioned by
domain hash), so every part changes and its done marker stops matching. Crawling the whole part
again would fetch every URL of every earlier month once a month. Instead the driver carries over
the earlier fetch-log rows of URLs still in the part, unchanged (status, error, final URL,
fetched_at, WARC file/offset/length), and crawls only URLs it has no row for, plus earlier
failures whose error is in `crawl.recrawl_errors` (transient ones by default), into WARC files
numbered after the earlier ones. Earlier WARC files are never rewritten or appended to and stay
listed as outputs of the part.

URLs that left the links part (a takedown, a re-partitioning) lose their fetch-log and ledger
rows, but their records stay in the earlier WARC files until a compaction rewrites them (there
is no compaction yet: the bytes are unreferenced, nothing downstream reads them).

The earlier result is used only when all of it is there and made the same way: the done marker
`_done/crawl/<part>.json` names the same crawl config fingerprint and stage VERSION
(pipeline.core.reuse.earlier_run), the fetch log reads with FETCH_SCHEMA, and the fetch log,
the ledger and every WARC file the marker lists are unchanged by core.reuse's rule (size and
mtime as recorded, else the same sha256), with every WARC file a row references among them.
Otherwise the part is crawled in full.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.config import CrawlConfig
from pipeline.core.io import read_table
from pipeline.core.reuse import earlier_run
from pipeline.crawl.warc import warc_index
from schemas.records import FETCH_SCHEMA

log = logging.getLogger(__name__)

WARC_DIR = "crawl/warc/"


@dataclass
class Previous:
    """The reusable earlier result of one crawl part."""

    rows: dict[str, dict[str, Any]]  # url -> fetch-log row, FETCH_SCHEMA fields as read
    details: dict[str, str]  # url -> ledger detail of an earlier drop
    warc_files: list[str]  # every earlier WARC file of the part, relative to the root
    next_warc: int  # the first WARC file number a new crawl of the part may write

    def to_crawl(self, links: list[str], cfg: CrawlConfig) -> list[str]:
        """Links to fetch now, in the links part's order: new URLs and retryable failures."""
        retry = set(cfg.recrawl_errors)
        out = []
        for url in links:
            row = self.rows.get(url)
            if row is None or (row["error"] is not None and row["error"] in retry):
                out.append(url)
        return out


def load_previous(
    root: Path, stage: str, part: str, fetches: Path, ledger: Path, cfg: CrawlConfig, version: int
) -> Previous | None:
    """The earlier complete result of the part, or None (with the reason logged) when there
    is none or it cannot be trusted: then the caller crawls the part in full."""
    root = Path(root)

    def unusable(why: str) -> Previous | None:
        log.warning(
            "%s/%s: earlier crawl not reusable (%s); crawling the part in full", stage, part, why
        )
        return None

    earlier, why = earlier_run(root, stage, part, cfg.fingerprint(), version)
    if earlier is None:
        return None if why == "no earlier run" else unusable(why)
    changed = earlier.changed_outputs()
    if changed:
        return unusable(f"{changed[0]} is missing or changed since the earlier crawl")
    try:
        table = read_table(fetches)
    except Exception as err:  # noqa: BLE001 (any unreadable file means: crawl in full)
        return unusable(f"fetch log unreadable: {type(err).__name__}: {err}")
    if not table.schema.equals(FETCH_SCHEMA):
        return unusable("fetch log has another schema")
    rows: dict[str, dict[str, Any]] = {}
    ends: dict[str, int] = {}
    for r in table.to_pylist():
        rows[r["url"]] = r
        if r["warc_file"]:
            if r["warc_offset"] is None or r["warc_length"] is None:
                return unusable(f"fetch row of {r['url']} without a WARC offset")
            end = r["warc_offset"] + r["warc_length"]
            ends[r["warc_file"]] = max(ends.get(r["warc_file"], 0), end)
    warc_files = sorted(o for o in earlier.outputs if o.startswith(WARC_DIR))
    for rel in sorted(set(ends) - set(warc_files)):
        return unusable(f"{rel} is referenced but not an output of the earlier crawl")
    for rel in warc_files:
        p = root / rel
        if warc_index(p) < 0 or not p.name.startswith(f"{part}-"):
            return unusable(f"{rel} is not a WARC file of the part")
        if p.stat().st_size < ends.get(rel, 0):
            return unusable(f"{rel} is shorter than its fetch rows say")
    details: dict[str, str] = {}
    try:
        for d in read_table(ledger, ["key", "reason", "detail"]).to_pylist():
            row = rows.get(d["key"])
            if row is not None and row["error"] == d["reason"]:
                details[d["key"]] = d["detail"]
    except Exception:  # noqa: BLE001, S110 (details are rebuilt from the status instead)
        pass
    next_warc = max((warc_index(root / rel) for rel in warc_files), default=-1) + 1
    return Previous(rows=rows, details=details, warc_files=warc_files, next_warc=next_warc)
