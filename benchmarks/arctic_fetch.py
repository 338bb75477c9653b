"""Arctic Shift client cost: a month of many subreddits fetched from a local fake server
(tests/arctic_server.py, real record schema, ~940 bytes per post) with no rate limit, so what is
measured is the client (HTTP, JSON decode, canonical re-encode, fsynced parts, state file,
sorted zstd dump), not the service's pace. CPU time is the fetching thread's own
(time.thread_time; the server runs in other threads of the process).

At the default pace (1 request/s, 100 posts per request, pages overlapping by one second) a
subreddit-month of N posts costs about N/99 s of waiting; the figure printed as
`hours_per_million_posts_at_1rps` is that.

Prints JSON lines. Usage: python benchmarks/arctic_fetch.py [--subs 40] [--posts 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.config import HarvestConfig
from pipeline.harvest.arctic_shift import fetch_configured
from tests.arctic_server import MONTH, FakeArcticShift, generated_month, serve


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subs", type=int, default=40)
    ap.add_argument("--posts", type=int, default=500, help="per subreddit (< 740)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    posts = generated_month({f"sub{i:03d}": args.posts for i in range(args.subs)}, ties=5)
    n_posts = args.subs * args.posts
    runs = []
    with serve(FakeArcticShift(posts)) as fake:
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = HarvestConfig(
                    arctic_shift={  # type: ignore[arg-type]
                        "subreddits": sorted(posts),
                        "months": [MONTH],
                        "base_url": fake.base_url,
                        "requests_per_second": 1e6,
                    }
                )
                wall0, cpu0 = time.perf_counter(), time.thread_time()
                result = fetch_configured(cfg, Path(tmp), now=2e9)[0]
                wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
                assert result.status == "fetched" and result.posts == n_posts, result
                size = Path(result.path or "").stat().st_size
            run = {
                "posts": n_posts,
                "pages": result.pages,
                "wall_s": round(wall, 3),
                "client_cpu_s": round(cpu, 3),
                "client_cpu_us_per_post": round(cpu / n_posts * 1e6, 1),
                "posts_per_s_wall": round(n_posts / wall),
                "dump_bytes_per_post": round(size / n_posts, 1),
            }
            runs.append(run)
            print(json.dumps({"run": run}), flush=True)
    print(
        json.dumps(
            {
                "summary": {
                    "posts": n_posts,
                    "median_client_cpu_us_per_post": statistics.median(
                        r["client_cpu_us_per_post"] for r in runs
                    ),
                    "median_posts_per_s_wall": statistics.median(
                        r["posts_per_s_wall"] for r in runs
                    ),
                    "hours_per_million_posts_at_1rps": round(1e6 / 99 / 3600, 2),
                    "peak_rss_mb": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                    ),
                }
            }
        )
    )


if __name__ == "__main__":
    main()
