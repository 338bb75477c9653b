"""What soft-404 / parked-page detection costs the crawl, per page, and what it flags.

Runs `pipeline.crawl.deadpage.judge_page` (the check the spider makes on every 200 HTML page)
over the 181 real Scrapinghub article pages and over the demo web's 200 HTML pages (articles,
indexes, a soft 404, a parked domain), --repeat times, and prints one JSON line per set: pages,
flagged (by reason), CPU and wall microseconds per page (best run). The crawl spends about
1.2 ms of CPU per page (benchmarks/README.md), so this is the share the check adds.

    python benchmarks/deadpage_cost.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.crawl.deadpage import judge_page

SHARED = Path(os.environ.get("WEBTEXT_SHARED_DATA", REPO.parent / "shared" / "data"))


def _measure(name: str, pages: list[bytes], repeat: int) -> dict[str, object]:
    best_cpu = best_wall = float("inf")
    flagged: Counter[str] = Counter()
    for _ in range(repeat):
        flagged = Counter()
        c0, w0 = time.process_time(), time.perf_counter()
        for body in pages:
            got = judge_page(body)
            if got is not None:
                flagged[got[0]] += 1
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return {
        "set": name,
        "pages": len(pages),
        "mean_bytes": round(sum(map(len, pages)) / max(1, len(pages))),
        "flagged": dict(sorted(flagged.items())),
        "cpu_us_per_page": round(best_cpu / len(pages) * 1e6, 1),
        "wall_us_per_page": round(best_wall / len(pages) * 1e6, 1),
        "repeat": repeat,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    real = [
        gzip.decompress(p.read_bytes())
        for p in sorted((SHARED / "extraction" / "scrapinghub" / "html").glob("*.html.gz"))
    ]
    print(json.dumps(_measure("scrapinghub", real, args.repeat)), flush=True)

    from demo.web import generate

    web = generate(Path(tempfile.mkdtemp()), seed=0)
    demo = [
        body
        for _host, pages in sorted(web.pages.items())
        for _path, (status, headers, body) in sorted(pages.items())
        if status == 200 and headers.get("Content-Type", "").startswith("text/html")
    ]
    print(json.dumps(_measure("demo_web", demo, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
