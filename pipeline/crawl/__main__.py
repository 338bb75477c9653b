"""`python -m pipeline.crawl --links PART --root DIR --part NAME --config CFG.json`

The crawl subprocess that `pipeline.crawl.run_part` starts (Twisted's reactor cannot be
restarted inside a long-lived worker). It only crawls and journals; the parent turns the
journal into the fetch log, the ledger and the done marker.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.core.config import CrawlConfig
from pipeline.crawl.forkserver import die_with_parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.crawl")
    ap.add_argument("--links", required=True, type=Path, help="links part (Parquet, LINKS_SCHEMA)")
    ap.add_argument("--root", required=True, type=Path, help="output root")
    ap.add_argument("--part", required=True, help="part name, e.g. part-00003")
    ap.add_argument("--config", required=True, type=Path, help="CrawlConfig as JSON")
    ap.add_argument("--summary", type=Path, help="write a JSON summary (timings) here")
    ap.add_argument(
        "--no-archive",
        action="store_true",
        help="benchmark baseline: same spider, no WARC and no journal written",
    )
    ap.add_argument("--parent-pid", type=int, help="exit when this process dies")
    ap.add_argument("--version", type=int, help="crawl stage VERSION (default: this code's)")
    ap.add_argument(
        "--warc-start",
        type=int,
        default=None,
        help="first WARC file number to write (files before it are never touched); default: "
        "after every WARC file of the part, or where an interrupted run of it began",
    )
    args = ap.parse_args(argv)
    if args.parent_pid and not die_with_parent(args.parent_pid):
        return 3

    from pipeline.crawl import VERSION
    from pipeline.crawl.runner import crawl, write_summary

    cfg = CrawlConfig.model_validate(json.loads(args.config.read_text()))
    if args.warc_start is None and not args.no_archive:
        from pipeline.crawl.driver import warc_start_for

        args.warc_start = warc_start_for(args.root, args.part, args.links, cfg)
    summary = crawl(
        args.links,
        args.root,
        args.part,
        cfg,
        VERSION if args.version is None else args.version,
        archive=not args.no_archive,
        warc_start=args.warc_start or 0,
    )
    if args.summary:
        write_summary(args.summary, summary)
    return 0 if summary["finished"] else 4  # interrupted: the part is incomplete


if __name__ == "__main__":
    sys.exit(main())
