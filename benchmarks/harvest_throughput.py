"""Harvest throughput on a generated .zst dump of realistic submission lines.

Writes N lines (default 1,000,000) shaped like 2017-era Pushshift submissions (the full field
set, ~1.4 kB per line, score and subreddit distributions with most posts under 3 karma, self
posts, NSFW, media hosts, duplicates) into a temp dir, then runs the harvest stage on it in a
child process on one core and prints JSON lines: the dump, then lines/s and peak memory.

    python benchmarks/harvest_throughput.py [--lines N] [--parts P] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zstandard

SUBS = [
    "news",
    "worldnews",
    "politics",
    "technology",
    "science",
    "programming",
    "gaming",
    "AskReddit",
    "pics",
    "funny",
    "todayilearned",
    "movies",
    "sports",
    "Music",
    "books",
]
TEXT_HOSTS = [
    "www.nytimes.com",
    "www.bbc.co.uk",
    "edition.cnn.com",
    "www.theguardian.com",
    "arstechnica.com",
    "github.com",
    "en.wikipedia.org",
    "medium.com",
    "www.wsj.com",
    "techcrunch.com",
    "www.washingtonpost.com",
    "www.reuters.com",
    "blog.example.org",
    "news.ycombinator.com",
    "www.npr.org",
    "www.vox.com",
    "www.theverge.com",
]
MEDIA_HOSTS = [
    "i.imgur.com",
    "imgur.com",
    "i.redd.it",
    "v.redd.it",
    "www.youtube.com",
    "youtu.be",
    "gfycat.com",
    "twitter.com",
]
T2017 = 1483228800

TEMPLATE = (
    '{"archived":false,"author":"%(author)s","author_flair_background_color":null,'
    '"author_flair_css_class":null,"author_flair_richtext":[],"author_flair_text":null,'
    '"author_flair_text_color":null,"author_flair_type":"text","brand_safe":true,'
    '"can_gild":true,"contest_mode":false,"created_utc":%(created)s,"distinguished":null,'
    '"domain":"%(domain)s","edited":false,"gilded":0,"hidden":false,"hide_score":false,'
    '"id":"%(id)s","is_crosspostable":true,"is_reddit_media_domain":false,"is_self":%(is_self)s,'
    '"is_video":false,"link_flair_css_class":null,"link_flair_richtext":[],'
    '"link_flair_text":null,"link_flair_text_color":"dark","link_flair_type":"text",'
    '"locked":false,"media":null,"media_embed":{},"no_follow":%(no_follow)s,'
    '"num_comments":%(comments)d,"num_crossposts":0,"over_18":%(nsfw)s,'
    '"parent_whitelist_status":"all_ads","permalink":"/r/%(sub)s/comments/%(id)s/%(slug)s/",'
    '"pinned":false,"post_hint":"link","preview":{"enabled":false,"images":[{"id":"%(img)s",'
    '"resolutions":[{"height":108,"url":"https://i.redditmedia.com/%(img)s.jpg?fit=crop&amp;'
    'crop=faces%%2Centropy&amp;arh=2&amp;w=108&amp;s=3e2fdc8f6741028a5bf278d18cfd187e",'
    '"width":108}],"source":{"height":180,"url":"https://i.redditmedia.com/%(img)s.jpg",'
    '"width":180},"variants":{}}]},"retrieved_on":%(retrieved)d,"rte_mode":"markdown",'
    '"score":%(score)d,"secure_media":null,"secure_media_embed":{},"selftext":"%(selftext)s",'
    '"send_replies":true,"spoiler":false,"stickied":false,"subreddit":"%(sub)s",'
    '"subreddit_id":"t5_2qh3l","subreddit_name_prefixed":"r/%(sub)s","subreddit_type":"public",'
    '"suggested_sort":null,"thumbnail":"default","thumbnail_height":null,'
    '"thumbnail_width":null,"title":"%(title)s","url":"%(url)s","whitelist_status":"all_ads"}'
)
WORDS = [
    "the",
    "a",
    "of",
    "new",
    "report",
    "says",
    "why",
    "how",
    "study",
    "shows",
    "government",
    "plan",
    "court",
    "city",
    "data",
    "people",
    "year",
    "first",
    "after",
    "over",
    "could",
    "will",
    "more",
    "than",
    "police",
    "market",
    "climate",
]


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def generate(path: Path, n_lines: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    c = zstandard.ZstdCompressor(level=3)
    raw = 0
    t0 = time.perf_counter()
    with open(path, "wb") as f, c.stream_writer(f) as w:
        buf = []
        for i in range(n_lines):
            pid = _base36(5_000_000 + i)
            sub = SUBS[int(rng.paretovariate(1.2)) % len(SUBS)]
            r = rng.random()
            is_self = r < 0.12
            if is_self:
                url, domain = f"https://www.reddit.com/r/{sub}/comments/{pid}/x/", f"self.{sub}"
            else:
                host = rng.choice(MEDIA_HOSTS if r < 0.35 else TEXT_HOSTS)
                domain = host.removeprefix("www.")
                article = rng.randrange(n_lines // 3)  # repeats make duplicates across posts
                url = f"https://{host}/2017/{article % 12 + 1:02d}/story-{article}.html"
                if rng.random() < 0.1:
                    url += "?utm_source=reddit&amp;utm_medium=social"
            score = int(rng.paretovariate(0.9)) - 1  # ~70% below 3, long tail
            title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))).capitalize()
            buf.append(
                TEMPLATE
                % {
                    "author": f"user{rng.randrange(200000)}",
                    "created": T2017 + i * 30,
                    "domain": domain,
                    "id": pid,
                    "is_self": "true" if is_self else "false",
                    "no_follow": "true" if score < 3 else "false",
                    "comments": rng.randrange(500),
                    "nsfw": "true" if rng.random() < 0.03 else "false",
                    "sub": sub,
                    "slug": title.lower().replace(" ", "_")[:40],
                    "img": f"{i:043d}",
                    "retrieved": T2017 + i * 30 + 86400 * 30,
                    "score": score,
                    "selftext": "Some text of a self post." if is_self else "",
                    "title": title,
                    "url": url,
                }
            )
            if len(buf) >= 10000:
                data = ("\n".join(buf) + "\n").encode()
                raw += len(data)
                w.write(data)
                buf = []
        if buf:
            data = ("\n".join(buf) + "\n").encode()
            raw += len(data)
            w.write(data)
    return {
        "lines": n_lines,
        "raw_bytes": raw,
        "zst_bytes": path.stat().st_size,
        "bytes_per_line": round(raw / n_lines),
        "gen_s": round(time.perf_counter() - t0, 1),
    }


def child(dump: str, out: str, parts: int) -> None:
    """Run in a fresh process: the figures are the harvest's alone."""
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    from pipeline import harvest
    from pipeline.core.config import HarvestConfig

    cfg = HarvestConfig(n_parts=parts)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    stats = harvest.run([dump], Path(out), cfg)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    total = harvest.summarize(stats)
    print(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "lines_per_s_wall": round(total["in"] / wall),
                "lines_per_s_cpu": round(total["in"] / cpu),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "funnel": total,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--parts", type=int, default=16)
    ap.add_argument("--keep", type=str, default=None, help="reuse/keep the dump in this dir")
    ap.add_argument("--child", nargs=3, metavar=("DUMP", "OUT", "PARTS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="harvest-bench-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        dump = folder / f"RS_bench_{args.lines}.zst"
        if not dump.exists():
            print(json.dumps({"dump": str(dump), **generate(dump, args.lines)}), flush=True)
        out = Path(tmp) / "out"
        res = subprocess.run(
            [sys.executable, __file__, "--child", str(dump), str(out), str(args.parts)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(res.stdout.strip().splitlines()[-1])
        print(
            json.dumps(
                {
                    "benchmark": "harvest_throughput",
                    "lines": args.lines,
                    "parts": args.parts,
                    "load": os.getloadavg()[0],
                    **result,
                }
            )
        )


if __name__ == "__main__":
    main()
