"""What happens to a part's rows after its live crawl, before they become the fetch log.

1. Links redirected en masse to one landing page become `soft_404` (deadpage.py).
2. Dead links (crawl.archive.errors: the permanent failures by default) are looked up in the
   web archives of crawl.archive.sources (archive.py). A recovered link becomes a kept row
   whose bytes are the capture nearest to its post date, in new WARC files of the part, with
   `source` and `captured_at`; a failed lookup becomes one drop with an `archive_*` reason
   whose detail keeps the live failure; `live_error` keeps the live reason on both.

Runs in the driver process (plain HTTP, no Scrapy), once per crawled part. A killed run is
redone from the journal: the lookups are asked again, the WARC records of the killed attempt
stay unreferenced (the archive is append-only).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.core.config import CrawlConfig
from pipeline.core.io import read_table
from pipeline.crawl.deadpage import landing_redirects

log = logging.getLogger(__name__)


def is_dead(row: dict[str, Any], errors: list[str]) -> bool:
    """Whether a fetch outcome makes the link dead by crawl.archive.errors."""
    err = row.get("error")
    if err is None:
        return False
    if err in errors:
        return True
    status = row.get("status")
    if status is not None and f"http_{status}" in errors:
        return True
    detail = str(row.get("detail") or "").lower()
    return err == "connection" and "connection_refused" in errors and "refused" in detail


def _mark_landing(rows: list[dict[str, Any]], min_links: int) -> int:
    landing = landing_redirects(rows, min_links)
    for r in rows:
        if r["url"] in landing:
            # The WARC record of the landing page stays in the archive, unreferenced.
            r.update(
                error="soft_404",
                detail=landing[r["url"]],
                warc_file=None,
                warc_offset=None,
                warc_length=None,
            )
    return len(landing)


def _post_dates(links_part: Path, urls: set[str]) -> dict[str, Any]:
    table = read_table(links_part, ["url", "first_seen"])
    return {r["url"]: r["first_seen"] for r in table.to_pylist() if r["url"] in urls}


def after_live_crawl(
    root: Path, part: str, links_part: Path, rows: list[dict[str, Any]], cfg: CrawlConfig
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The journal rows of this crawl, with landing redirects marked dead and dead links
    recovered from archives where possible; plus figures for the part's stats."""
    extra: dict[str, Any] = {}
    if cfg.landing_min_links:
        n = _mark_landing(rows, cfg.landing_min_links)
        if n:
            extra["landing_redirects"] = n
    acfg = cfg.archive
    dead = [r for r in rows if is_dead(r, acfg.errors)]
    if not dead:
        return rows, extra
    extra["dead_links"] = dict(sorted(Counter(r["error"] for r in dead).items()))
    if not acfg.sources:
        return rows, extra
    from pipeline.crawl.archive import recover

    dates = _post_dates(links_part, {r["url"] for r in dead})
    outcomes = recover(root, part, [(r["url"], dates.get(r["url"])) for r in dead], cfg)
    recovered: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for r in dead:
        live = r["error"]
        live_detail = r.get("detail") or (f"status {r['status']}" if r.get("status") else "")
        out = outcomes[r["url"]]
        if out.get("error") is None:
            recovered[out["source"]] += 1
        else:
            failed[out["error"]] += 1
            out = {**out, "detail": f"dead ({live}: {live_detail}); {out['detail']}"}
        r.update(out)
        r["live_error"] = live
    extra["archive_recovered"] = dict(sorted(recovered.items()))
    extra["archive_failed"] = dict(sorted(failed.items()))
    log.info(
        "%s: %d dead links, %d recovered from archives (%s)",
        part,
        len(dead),
        sum(recovered.values()),
        dict(recovered),
    )
    return rows, extra
