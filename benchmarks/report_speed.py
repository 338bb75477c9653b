"""Report speed and memory: `summarize` + page over a synthetic build of N documents.

Writes a build folder with shards (domain, karma, n_tokens, tokens, text), docs/ parts (every
DOCS_SCHEMA column, text included), a harvest ledger of 3 rows per document, a dedup ledger of
10% and crawl fetches, then runs the report in a fresh process and prints one JSON line: wall
seconds, documents/s and the peak RSS of that process (the text columns are never read, so
memory follows distinct domains and kept ids, not the corpus size).

    python benchmarks/report_speed.py [--docs 1000000] [--parts 16] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.io import write_table
from schemas.records import DOCS_SCHEMA, FETCH_SCHEMA, LEDGER_SCHEMA, shard_schema

RUN = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from pipeline.report import run
t = time.perf_counter()
run(Path(sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _texts(rng: np.random.Generator, n: int, length: int) -> pa.Array:
    pool = "".join(rng.choice(list("abcdefghij klmnopqrstuvwxyz "), size=length * 64))
    starts = rng.integers(0, len(pool) - length, size=n)
    return pa.array([pool[s : s + length] for s in starts.tolist()], pa.string())


def make(root: Path, n_docs: int, n_parts: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    per = -(-n_docs // n_parts)
    schema = shard_schema(50257, include_text=True)
    n_domains = max(n_docs // 5, 1)
    for p in range(n_parts):
        n = min(per, n_docs - p * per)
        if n <= 0:
            break
        ids = pa.array([f"{p:04x}{i:012x}" for i in range(n)])
        domain = pa.array([f"d{x}.test" for x in rng.zipf(1.3, n) % n_domains])
        n_tokens = pa.array(rng.lognormal(6.5, 1.0, n).astype(np.int32) + 1)
        karma = pa.array(rng.zipf(1.8, n).astype(np.int32) + 2)
        text = _texts(rng, n, 400)
        tokens = pa.array([[50256]] * n, pa.list_(pa.uint16()))
        cols = {
            "id": ids,
            "url": pa.array([f"http://x/{i}" for i in range(n)]),
            "domain": domain,
            "karma": karma,
            "subreddits": pa.array([["a"]] * n, pa.list_(pa.string())),
            "lang": pa.array(["en"] * n),
            "n_tokens": n_tokens,
            "tokens": tokens,
            "text": text,
        }
        write_table(root / f"shards/train-{p:05d}.parquet", pa.table(cols, schema=schema))
        docs = {}
        for field in DOCS_SCHEMA:
            if field.name in cols and field.type == cols[field.name].type:
                docs[field.name] = cols[field.name]
            elif field.name == "lang_score":
                docs[field.name] = pa.array(rng.random(n).astype(np.float32))
            elif field.name == "wiki_overlap":
                docs[field.name] = pa.nulls(n, field.type)
            elif pa.types.is_string(field.type):
                docs[field.name] = pa.array(["x"] * n)
            elif pa.types.is_list(field.type):
                docs[field.name] = pa.array([["a"]] * n, field.type)
            elif pa.types.is_timestamp(field.type):
                docs[field.name] = pa.nulls(n, field.type)
            else:
                docs[field.name] = pa.array(np.zeros(n), field.type)
        write_table(root / f"docs/part-{p:05d}.parquet", pa.table(docs, schema=DOCS_SCHEMA))
        reasons = np.array(["low_karma", "self_post", "blocked_domain", "nsfw"])
        m = 3 * n
        ledger = pa.table(
            {
                "key": pa.array([f"{p:04x}{i:010x}" for i in rng.permutation(m).tolist()]),
                "reason": pa.array(reasons[rng.integers(0, 4, m)]),
                "detail": pa.array(["1"] * m),
            },
            schema=LEDGER_SCHEMA,
        )
        write_table(root / f"ledger/harvest/part-{p:05d}.parquet", ledger)
        k = n // 10
        dedup = pa.table(
            {
                "key": ids.slice(0, k),
                "reason": pa.array(["near_duplicate"] * k),
                "detail": pa.array([f"kept{x}" for x in rng.integers(0, max(k // 3, 1), k)]),
            },
            schema=LEDGER_SCHEMA,
        )
        write_table(root / f"ledger/dedup/part-{p:05d}.parquet", dedup)
        fetch = {f.name: pa.nulls(n, f.type) for f in FETCH_SCHEMA}
        fetch["url"] = cols["url"]
        fetch["bytes"] = pa.array(np.zeros(n, np.int64))
        fetch["status"] = pa.array(np.where(rng.random(n) < 0.9, 200, 404).astype(np.int32))
        write_table(
            root / f"crawl/fetches/part-{p:05d}.parquet", pa.table(fetch, schema=FETCH_SCHEMA)
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--parts", type=int, default=16)
    ap.add_argument("--keep", type=Path, default=None, help="build here and keep it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "build"
        root.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        make(root, args.docs, args.parts)
        made = time.perf_counter() - t
        res = subprocess.run(
            [sys.executable, "-c", RUN, str(root), str(REPO)],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(res.stdout.strip().splitlines()[-1])
        size = sum(p.stat().st_size for p in root.rglob("*.parquet"))
        html = (root / "report/index.html").stat().st_size
        print(
            json.dumps(
                {
                    "bench": "report",
                    "docs": args.docs,
                    "ledger_rows": int(args.docs * 3.1),
                    "parquet_mb": round(size / 2**20, 1),
                    "build_seconds": round(made, 1),
                    "report_seconds": round(figures["seconds"], 2),
                    "docs_per_s": round(args.docs / figures["seconds"]),
                    "peak_rss_mb": round(figures["peak_rss_mb"]),
                    "html_mb": round(html / 2**20, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
