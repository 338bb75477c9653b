"""The crawl archive is append-only: an earlier crawl of a part is re-judged, never thrown away.

A part is crawled again when its links changed (a new month merged in), when a setting that
decides what is kept changed (core.config.CRAWL_KEEP_FIELDS: content types, size cap, robots,
redirects, allowed hosts), or when the crawl VERSION was bumped. Settings that only change how
pages are fetched (concurrency, delays, timeouts, retries, user agent, proxy, WARC gzip level)
are not in the crawl's config fingerprint at all, so changing them leaves the done marker
matching and nothing is fetched.

In every case the earlier fetch-log rows of URLs still in the part are carried over, and
  - a row that holds a page (a WARC record) is re-judged against the current content types and
    size cap from its own content type and size: it may become a `bad_content_type` or
    `too_large` drop (its WARC pointer stays in the row, so a later change back keeps it again
    without a fetch), or an earlier such drop becomes a kept page again;
  - a drop without a page is fetched again when the current settings may allow it (its content
    type is now allowed, the size cap grew, robots.txt is no longer obeyed, more redirects are
    allowed, a host was allowed), when its error is in `crawl.recrawl_errors`, or when the crawl
    VERSION changed (the code that judged it did);
  - URLs without a row are fetched.
What is fetched goes into NEW WARC files, numbered after every file of the part on disk; no
earlier WARC file is ever rewritten, appended to or deleted, and they all stay outputs of the
part. Limits: pages kept under looser robots, redirect or host rules stay kept when those rules
tighten (the archive does not hold robots.txt or the redirect chain to re-judge them by).

URLs that left the links part (a takedown, a re-partitioning) lose their fetch-log and ledger
rows, but their records stay in the earlier WARC files (unreferenced; nothing reads them).

The earlier result is used only when all of it is there: the done marker names its outputs,
the fetch log reads with FETCH_SCHEMA, and the fetch log, the ledger and every WARC file the
marker lists are unchanged by core.reuse's rule (size and mtime as recorded, else the same
sha256), with every WARC file a row references among them. Otherwise the part is crawled in
full, still into new WARC files after the existing ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.core.config import CrawlConfig
from pipeline.core.io import read_table
from pipeline.core.reuse import EarlierRun, marker_path, read_marker
from pipeline.crawl.fallback import is_dead
from pipeline.crawl.warc import part_warcs, warc_index
from schemas.records import FETCH_SCHEMA

log = logging.getLogger(__name__)

WARC_DIR = "crawl/warc/"
# Drops that the archive can re-judge: the row holds the page's record (re-judged drops keep it).
REJUDGED = ("bad_content_type", "too_large")


def next_warc(root: Path, part: str) -> int:
    """The first WARC file number after every file of the part on disk."""
    files = part_warcs(Path(root) / "crawl" / "warc", part)
    return max((warc_index(p) for p in files), default=-1) + 1


def judge_page(row: dict[str, Any], cfg: CrawlConfig) -> tuple[str | None, str]:
    """(error, detail) of an archived page under the current settings: what the spider would
    decide from the same Content-Type and body size."""
    ctype = row["content_type"]
    if ctype is not None and ctype not in {c.lower() for c in cfg.content_types}:
        return "bad_content_type", ctype
    if (row["bytes"] or 0) > cfg.max_bytes:
        return "too_large", f"{row['bytes']} bytes > crawl.max_bytes {cfg.max_bytes}"
    return None, ""


@dataclass
class Previous:
    """The reusable earlier result of one crawl part."""

    rows: dict[str, dict[str, Any]]  # url -> fetch-log row, FETCH_SCHEMA fields as read
    details: dict[str, str]  # url -> ledger detail of an earlier drop
    warc_files: list[str]  # every earlier WARC file of the part, relative to the root
    kept_by: dict[str, Any] | None  # the earlier crawl's CrawlConfig.kept_by(); None: unknown
    version: Any  # the earlier crawl's stage VERSION

    def has_page(self, row: dict[str, Any]) -> bool:
        return bool(row["warc_file"]) and (row["error"] is None or row["error"] in REJUDGED)

    def _allowed_now(self, row: dict[str, Any], cfg: CrawlConfig, version: int) -> bool:
        """Whether an earlier drop without a page may come out otherwise if fetched now."""
        err = row["error"]
        if err in cfg.recrawl_errors or self.version != version:
            return True
        # What the earlier marker does not record (a marker from before kept_by) is taken as
        # today's setting, so upgrading fetches nothing; archived pages are re-judged anyway.
        old = {**cfg.kept_by(), **(self.kept_by or {})}
        if err == "bad_content_type":
            ctype = row["content_type"]
            return ctype is not None and ctype in {c.lower() for c in cfg.content_types}
        if err == "too_large":
            return bool(cfg.max_bytes > old["max_bytes"])
        if err == "robots":
            return not cfg.obey_robots and bool(old["obey_robots"])
        if err == "too_many_redirects":
            return bool(cfg.max_redirects > old["max_redirects"])
        if err == "blocked_address":
            return bool(set(cfg.allow_hosts) - set(old["allow_hosts"]))
        if cfg.archive.sources and old.get("archive") != cfg.kept_by()["archive"]:
            # Archives newly asked (or other dead-link errors): a dead link, or one no archive
            # had, gets its live fetch and archive lookup again.
            return err.startswith("archive_") or is_dead(row, cfg.archive.errors)
        return False

    def to_crawl(self, links: list[str], cfg: CrawlConfig, version: int) -> list[str]:
        """Links to fetch now, in the links part's order: what the archive lacks."""
        out = []
        for url in links:
            row = self.rows.get(url)
            if row is None or (
                not self.has_page(row)
                and row["error"] is not None
                and self._allowed_now(row, cfg, version)
            ):
                out.append(url)
        return out

    def carried(self, url: str, cfg: CrawlConfig) -> tuple[dict[str, Any], str]:
        """The earlier row of a URL not fetched now, re-judged: (fetch row, ledger detail)."""
        row = self.rows[url]
        if self.has_page(row):
            err, detail = judge_page(row, cfg)
            if err is not None and err == row["error"]:
                detail = self.details.get(url, detail)
            return {**row, "error": err}, detail
        status = f"status {row['status']}" if row["status"] else ""
        return row, self.details.get(url, status)


def _upgrade(table: pa.Table) -> pa.Table | None:
    """A fetch log in today's schema: one written before a nullable column was added (source,
    captured_at, live_error) gets it as nulls, so an upgrade re-judges rather than recrawls;
    any other difference is None."""
    if table.schema.equals(FETCH_SCHEMA):
        return table
    have = set(table.schema.names)
    if not have <= set(FETCH_SCHEMA.names):
        return None
    columns = []
    for field in FETCH_SCHEMA:
        if field.name in have:
            if not table.schema.field(field.name).type.equals(field.type):
                return None
            columns.append(table.column(field.name))
        elif field.nullable:
            columns.append(pa.nulls(table.num_rows, field.type))
        else:
            return None
    return pa.Table.from_arrays(columns, schema=FETCH_SCHEMA)


def load_previous(
    root: Path, stage: str, part: str, fetches: Path, ledger: Path
) -> Previous | None:
    """The earlier complete result of the part, whatever config and version made it, or None
    (with the reason logged) when there is none or it cannot be trusted: then the caller
    crawls the part in full."""
    root = Path(root)

    def unusable(why: str) -> Previous | None:
        log.warning(
            "%s/%s: earlier crawl not reusable (%s); crawling the part in full", stage, part, why
        )
        return None

    mpath = marker_path(root, stage, part)
    if not mpath.is_file():
        return None
    marker = read_marker(mpath)
    if marker is None:
        return unusable("done marker unreadable")
    if not isinstance(marker.get("inputs"), dict) or not isinstance(marker.get("outputs"), dict):
        return unusable("done marker from an older layout")
    earlier = EarlierRun(root=root, marker=marker)
    changed = earlier.changed_outputs()
    if changed:
        return unusable(f"{changed[0]} is missing or changed since the earlier crawl")
    try:
        table = read_table(fetches)
    except Exception as err:  # noqa: BLE001 (any unreadable file means: crawl in full)
        return unusable(f"fetch log unreadable: {type(err).__name__}: {err}")
    table = _upgrade(table)
    if table is None:
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
    stats = marker.get("stats") or {}
    kept_by = (stats.get("extra") or {}).get("kept_by")
    return Previous(
        rows=rows,
        details=details,
        warc_files=warc_files,
        kept_by=kept_by if isinstance(kept_by, dict) else None,
        version=marker.get("version"),
    )
