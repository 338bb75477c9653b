"""Throughput of the whole extract stage against bare trafilatura.extract on the same pages.

The 181 Scrapinghub pages are written into a WARC (one gzip member per response, as the
crawler does) with a links and a fetches part; then, in the same run:
- bare: trafilatura.extract(html bytes) with the options of the default ExtractConfig;
- stage, 1 process: pipeline.extract.run_part (WARC read, decoding, extraction, language ID,
  signals, token counts, Parquet + ledger write), forced so nothing is skipped;
- stage, 2 processes: the same with extract.processes = 2.

    python benchmarks/extract_throughput.py [--copies 2] [--repeat 2]

Prints JSON lines; pages/s is the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.extract_quality import load_pages

SHARED = Path(os.environ.get("WEBTEXT_SHARED_DATA", REPO.parent / "shared" / "data"))


def _seed_tiktoken() -> None:
    import shutil

    from pipeline.core.tokenizer import cache_key

    ranks = SHARED / "tokenizer" / "r50k_base.tiktoken"
    cache = REPO / ".cache" / "tiktoken"
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / cache_key()).exists() and ranks.exists():
        shutil.copyfile(ranks, cache / cache_key())
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))


def write_inputs(root: Path, pages: dict[str, bytes], urls: dict[str, str]) -> tuple[Path, Path]:
    from datetime import UTC, datetime

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from pipeline.core.io import rows_to_table, write_table
    from schemas.records import FETCH_SCHEMA, LINKS_SCHEMA

    t0 = datetime(2019, 11, 20, tzinfo=UTC)
    warc_rel = "crawl/warc/part-00000.warc.gz"
    (root / "crawl" / "warc").mkdir(parents=True, exist_ok=True)
    fetches, links = [], []
    with open(root / warc_rel, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for key in sorted(pages):
            url, body = urls[key], pages[key]
            http = StatusAndHeaders(
                "200 OK",
                [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                protocol="HTTP/1.1",
            )
            rec = writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), http_headers=http
            )
            start = f.tell()
            writer.write_record(rec)
            fetches.append(
                {
                    "url": url,
                    "final_url": url,
                    "status": 200,
                    "content_type": "text/html",
                    "bytes": len(body),
                    "fetched_at": t0,
                    "elapsed_ms": 100,
                    "error": None,
                    "warc_file": warc_rel,
                    "warc_offset": start,
                    "warc_length": f.tell() - start,
                }
            )
            host = url.split("/")[2]
            links.append(
                {
                    "url": url,
                    "domain": ".".join(host.split(".")[-2:]),
                    "host": host,
                    "karma": 3,
                    "karma_max": 3,
                    "karma_sum": 3,
                    "n_posts": 1,
                    "post_ids": ["x"],
                    "subreddits": ["news"],
                    "first_seen": t0,
                    "title": "",
                }
            )
    lp, fp = root / "links" / "part-00000.parquet", root / "crawl/fetches/part-00000.parquet"
    write_table(lp, rows_to_table(links, LINKS_SCHEMA))
    write_table(fp, rows_to_table(fetches, FETCH_SCHEMA))
    return lp, fp


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=1, help="pages repeated under new URLs")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    _seed_tiktoken()
    import trafilatura

    from pipeline import extract
    from pipeline.core.config import CorpusConfig

    gold, html, urls = load_pages()
    pages: dict[str, bytes] = {}
    purls: dict[str, str] = {}
    for c in range(args.copies):
        for k in gold:
            pages[f"{c}-{k}"] = html[k]
            purls[f"{c}-{k}"] = urls[k] + (f"?copy={c}" if c else "")
    n = len(pages)
    cfg0 = CorpusConfig()
    kwargs = extract.Settings(cfg0.extract, cfg0.tokenizer).trafilatura_kwargs()
    load = os.getloadavg()[0]

    def bare() -> None:
        for k in sorted(pages):
            trafilatura.extract(pages[k], url=purls[k], **kwargs)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lp, fp = write_inputs(root, pages, purls)
        results: dict[str, float] = {}
        cpu: dict[str, float] = {}
        runs = {"bare_trafilatura_extract": bare}
        for procs in (1, 2):
            cfg = CorpusConfig.model_validate({"out_dir": tmp, "extract": {"processes": procs}})

            def stage(cfg: CorpusConfig = cfg) -> None:
                stats = extract.run_part(lp, fp, root, cfg, force=True)
                assert stats.n_in == n

            runs[f"stage_{procs}_process"] = stage
        bare()  # warm-up: imports, lazy tables, model load
        runs["stage_1_process"]()
        for _ in range(args.repeat):
            for name, fn in runs.items():
                c0, t0 = _cpu(), time.perf_counter()
                fn()
                el, cel = time.perf_counter() - t0, _cpu() - c0
                results[name] = max(results.get(name, 0.0), n / el)
                cpu[name] = min(cpu.get(name, float("inf")), cel / n)
    base = results["bare_trafilatura_extract"]
    for name, pps in results.items():
        print(
            json.dumps(
                {
                    "bench": "extract_throughput",
                    "run": name,
                    "pages": n,
                    "pages_per_s": round(pps, 1),
                    "vs_bare": round(pps / base, 3),
                    # CPU seconds per page including worker processes: what the machine's load
                    # cannot distort (wall-clock pages/s on a shared machine can be)
                    "cpu_ms_per_page": round(cpu[name] * 1000, 2),
                    "cpu_vs_bare": round(cpu["bare_trafilatura_extract"] / cpu[name], 3),
                    "loadavg_1min_at_start": round(load, 2),
                    "cpus": os.cpu_count(),
                }
            )
        )


if __name__ == "__main__":
    main()
