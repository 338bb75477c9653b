"""What a crawl setting change costs on an archived part, through the real crawl driver.

One links part of N URLs with an earlier complete crawl (fetch log, ledger, done marker; 90%
kept pages pointing into a WARC file, 10% 404s). Then run_part with: a fetch-only change
(concurrency: the marker matches, the part is skipped), a keep change that keeps everything
(one more content type: every row re-judged, nothing fetched) and one that drops every HTML page
(re-judged into bad_content_type drops, nothing fetched). No crawl subprocess starts in any of
them. Prints a JSON line per case: wall and CPU seconds, CPU microseconds per row.

    python benchmarks/crawl_rejudge.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from pipeline.core.config import CrawlConfig
from pipeline.core.io import rows_to_table, write_table
from pipeline.core.stage import run_marked
from pipeline.crawl import VERSION, finalize, run_part
from schemas.records import LINKS_SCHEMA, LinkRecord


def make_part(root: Path, n: int, cfg: CrawlConfig) -> Path:
    urls = [f"https://site{i % 997}.example/article/{i:08d}.html" for i in range(n)]
    links = root / "links" / "part-00000.parquet"
    rows = [asdict(LinkRecord(u, u.split("/")[2], u.split("/")[2], 3, 3, 3, 1)) for u in urls]
    write_table(links, rows_to_table(rows, LINKS_SCHEMA))
    warc = root / "crawl" / "warc" / "part-00000-00000.warc.gz"
    warc.parent.mkdir(parents=True, exist_ok=True)
    fetched, offset = [], 0
    for i, u in enumerate(urls):
        row = {"url": u, "final_url": u, "fetched_at": 1_500_000_000_000 + i, "elapsed_ms": 40}
        if i % 10 == 9:
            row |= {"status": 404, "content_type": "text/html", "error": "http_4xx"}
        else:
            row |= {
                "status": 200,
                "content_type": "text/html",
                "bytes": 60_000,
                "error": None,
                "warc_file": "crawl/warc/part-00000-00000.warc.gz",
                "warc_offset": offset,
                "warc_length": 15_000,
            }
            offset += 16_000
        fetched.append(row)
    with open(warc, "wb") as f:
        f.truncate(offset)  # sparse: the driver checks sizes, never reads the records
    run_marked(
        root,
        "crawl",
        "part-00000",
        [links],
        cfg.fingerprint(),
        VERSION,
        lambda: finalize(root, "part-00000", urls, fetched, cfg=cfg),
    )
    return links


def measure(name: str, links: Path, root: Path, cfg: CrawlConfig, n: int) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    stats = run_part(links, root, cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    line = {
        "case": name,
        "rows": n,
        "skipped": bool(stats.extra.get("skipped")),
        "crawled_now": stats.extra.get("crawled_now", 0),
        "rejudged": stats.extra.get("rejudged", 0),
        "kept": stats.n_out,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_us_per_row": round(cpu / n * 1e6, 2),
    }
    print(json.dumps(line), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    base = CrawlConfig()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        links = make_part(root, args.rows, base)
        measure(
            "fetch_only_change",
            links,
            root,
            base.model_copy(update={"concurrent_requests": 8}),
            args.rows,
        )
        wider = base.model_copy(update={"content_types": [*base.content_types, "text/plain"]})
        measure("keep_change_keeps_all", links, root, wider, args.rows)
        measure(
            "keep_change_drops_html",
            links,
            root,
            base.model_copy(update={"content_types": ["text/plain"]}),
            args.rows,
        )


if __name__ == "__main__":
    main()
