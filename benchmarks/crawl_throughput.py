"""Crawl throughput: N pages over S local sites, with WARC + fetch log vs the bare spider.

The site server (tests/crawl_server.py) runs in its own process so it does not share the
crawler's GIL. Both runs use the same spider, settings and politeness; the bare run writes no
WARC and no journal. Prints one JSON line per run and a summary line.

    python benchmarks/crawl_throughput.py [--pages 10000] [--sites 50] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.config import CrawlConfig
from pipeline.core.io import read_table, rows_to_table, write_table
from pipeline.crawl import crawl_subprocess, run_part
from schemas.records import LINKS_SCHEMA, LinkRecord


def write_links(path: Path, urls: list[str]) -> Path:
    rows = [asdict(LinkRecord(u, "127.0.0.1", "127.0.0.1", 3, 3, 3, 1)) for u in urls]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(path, rows_to_table(rows, LINKS_SCHEMA))
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument(
        "--concurrent-per-domain", type=int, default=CrawlConfig().concurrent_per_domain
    )
    ap.add_argument("--concurrent-requests", type=int, default=CrawlConfig().concurrent_requests)
    args = ap.parse_args()

    per_site = args.pages // args.sites
    server = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests" / "crawl_server.py"),
            "--bench-sites",
            str(args.sites),
            "--pages",
            str(per_site),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ports = json.loads(server.stdout.readline())["ports"]  # type: ignore[union-attr]
        urls = [f"http://127.0.0.1:{p}/a/{i}.html" for p in ports for i in range(per_site)]
        cfg = CrawlConfig(
            allow_hosts=["127.0.0.1"],
            concurrent_per_domain=args.concurrent_per_domain,
            concurrent_requests=args.concurrent_requests,
        )
        results: dict[str, list[float]] = {"warc": [], "bare": []}
        cpu: dict[str, list[float]] = {"warc": [], "bare": []}
        with tempfile.TemporaryDirectory(prefix="crawl-bench-") as tmp:
            for rep in range(args.repeat):
                for mode in ("bare", "warc"):  # alternate, so load drift hits both alike
                    root = Path(tmp) / f"{mode}-{rep}"
                    links = write_links(root / "links" / "part-00000.parquet", urls)
                    t0 = time.monotonic()
                    if mode == "warc":
                        stats = run_part(links, root, cfg)
                        wall = time.monotonic() - t0
                        summary = stats.extra
                        fetches = read_table(root / "crawl" / "fetches" / "part-00000.parquet")
                        kept = sum(1 for e in fetches.column("error").to_pylist() if e is None)
                        warc_bytes = sum(
                            p.stat().st_size for p in (root / "crawl" / "warc").glob("*.warc.gz")
                        )
                    else:
                        spath = root / "summary.json"
                        proc = crawl_subprocess(
                            links, root, "part-00000", cfg, archive=False, summary=spath
                        )
                        assert proc.wait() == 0
                        wall = time.monotonic() - t0
                        summary = json.loads(spath.read_text())
                        kept = summary["kept_now"]
                        warc_bytes = 0
                    rate = summary["fetched_now"] / summary["crawl_seconds"]
                    results[mode].append(rate)
                    cpu_ms = 1000 * summary["cpu_seconds"] / summary["fetched_now"]
                    cpu[mode].append(cpu_ms)
                    print(
                        json.dumps(
                            {
                                "bench": "crawl_throughput",
                                "mode": mode,
                                "repeat": rep,
                                "pages": len(urls),
                                "sites": len(ports),
                                "kept": kept,
                                "crawl_seconds": summary["crawl_seconds"],
                                "pages_per_s": round(rate, 1),
                                "wall_seconds_incl_startup_and_finalize": round(wall, 2),
                                "warc_bytes": warc_bytes,
                                # CPU of the crawl process per page: less skewed by other load than
                                # pages/s on a shared machine.
                                "crawl_cpu_ms_per_page": round(cpu_ms, 3),
                                "loadavg_1m": os.getloadavg()[0],
                            }
                        ),
                        flush=True,
                    )
        # Runs alternate bare/warc, so each pair saw about the same load: the median of the
        # per-pair ratios is the figure least moved by other work on a shared machine.
        ratios = [w / b for w, b in zip(results["warc"], results["bare"], strict=True)]
        print(
            json.dumps(
                {
                    "bench": "crawl_throughput",
                    "summary": True,
                    "warc_pages_per_s_median": round(statistics.median(results["warc"]), 1),
                    "bare_pages_per_s_median": round(statistics.median(results["bare"]), 1),
                    "warc_over_bare_pairs": [round(r, 3) for r in ratios],
                    "warc_over_bare_median": round(statistics.median(ratios), 3),
                    "warc_cpu_ms_per_page_median": round(statistics.median(cpu["warc"]), 3),
                    "bare_cpu_ms_per_page_median": round(statistics.median(cpu["bare"]), 3),
                    "goal": {"warc_pages_per_s": 400, "warc_over_bare": 0.85},
                }
            ),
            flush=True,
        )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
