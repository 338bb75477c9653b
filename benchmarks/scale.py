"""The corpus stages at size: filter -> dedup -> shards over a generated corpus of N documents,
each stage in its own process through the real drivers, then a no-op rebuild.

The corpus is written as docs parts (DOCS_SCHEMA, sorted by id, like extract's output):
document lengths drawn from the real pages of the Scrapinghub gold set (with +-25% jitter),
text recombined from the sentences of those pages and of the Wikipedia dump sample, 1.5% near
copies of an earlier document (a sentence dropped, one replaced, a boilerplate line added),
URLs on the hosts of the real Reddit dump sample, ids as the pipeline makes them (blake2b of the
normalized URL), karma with a heavy tail like Reddit scores. The rule signals are derived
cheaply instead of by extract (which this benchmark does not run): n_chars, n_words exact,
n_tokens the sum of the sentences' GPT-2 token counts (a join can differ by a token), stop
words counted per sentence; 3% of documents are labelled French (dropped as `lang`).

Prints one JSON line per stage and N: wall s, CPU s (user + sys of the child), peak RSS
(ru_maxrss of the child), rows in/out, CPU ms per document; then the no-op rebuild's time.

Usage: python benchmarks/scale.py --n 100000 --n 1000000 [--part-docs 25000]
       [--shard-rows 25000] [--work /tmp/webtext-scale] [--keep]
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import dedup, shards
from pipeline import filter as filt
from pipeline.core.config import CorpusConfig
from pipeline.core.io import rows_to_table, write_table
from pipeline.core.tokenizer import get_encoding
from pipeline.extract.quality import STOP_WORDS
from pipeline.harvest.urls import normalize_url, registered_domain, url_host
from schemas.records import DOCS_SCHEMA, doc_id

DATA = REPO.parent / "shared" / "data"
GOLD = DATA / "extraction/scrapinghub/ground-truth.json"
WIKI = DATA / "wikipedia/enwiki-sample-pages-articles.xml.bz2"
DUMPS = sorted((DATA / "reddit").glob("RS_v2_*.xz"))
NEAR_COPY_SHARE = 0.015
FRENCH_SHARE = 0.03
ARCHIVED_SHARE = 0.02
BOILERPLATE = [
    "Sign up for our newsletter to get the latest stories delivered to your inbox.",
    "Share this article on Facebook, Twitter and LinkedIn.",
    "Advertisement. Continue reading the main story below.",
]
START = datetime(2015, 1, 1, tzinfo=UTC).timestamp()
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


# --- the corpus -----------------------------------------------------------------------------


def _sentences() -> list[str]:
    from pipeline.filter.wiki_sources import iter_articles

    bodies = [v["articleBody"] for _, v in sorted(json.loads(GOLD.read_text()).items())]
    texts = bodies + list(iter_articles(WIKI))
    out = []
    for t in texts:
        for para in t.split("\n"):
            out += [s.strip() for s in _SENT.split(para) if len(s.split()) >= 4]
    return sorted(set(out))


def _posts() -> list[dict[str, Any]]:
    posts = []
    for dump in DUMPS:
        with lzma.open(dump, "rt") as f:
            for line in f:
                p = json.loads(line)
                url = normalize_url(p.get("url") or "") if not p.get("is_self") else None
                if url:
                    host = url_host(url)
                    posts.append(
                        {
                            "host": host,
                            "domain": registered_domain(host),
                            "subreddit": p["subreddit"],
                        }
                    )
    return posts


def build_pool() -> dict[str, Any]:
    sents = _sentences()
    enc = get_encoding()
    lengths = [len(v["articleBody"]) for v in json.loads(GOLD.read_text()).values()]
    return {
        "sentences": sents,
        "tokens": np.array([len(t) for t in enc.encode_ordinary_batch(sents)], np.int64),
        "words": np.array([len(s.split()) for s in sents], np.int64),
        "stop": np.array(
            [sum(w.lower() in STOP_WORDS for w in s.split()) for s in sents], np.int64
        ),
        "word_chars": np.array([sum(len(w) for w in s.split()) for s in sents], np.int64),
        "lengths": np.array(lengths, np.int64),
        "chars": np.array([len(x) for x in sents], np.int64),
        "mean_chars": int(np.mean([len(x) for x in sents])),
        "posts": _posts(),
    }


_POOL: dict[str, Any] = {}


def _init(pool: dict[str, Any]) -> None:
    _POOL.update(pool)


def _doc_sentences(rng: np.random.Generator, pool: dict[str, Any]) -> list[int]:
    """Random sentences until the length of a real page (drawn with +-25% jitter)."""
    target = int(rng.choice(pool["lengths"]) * rng.uniform(0.75, 1.25))
    chars = pool["chars"]
    picks = np.empty(0, np.int64)
    while True:
        more = rng.integers(len(chars), size=max(8, 2 * target // pool["mean_chars"]))
        picks = np.concatenate([picks, more])
        ends = np.cumsum(chars[picks] + 1)
        if ends[-1] >= target:
            return picks[: int(np.searchsorted(ends, target)) + 1].tolist()


def _row(i: int, picks: list[int], extra: str | None, r: np.ndarray) -> dict:
    """Document i from its sentences; `r` holds its 8 uniform random numbers."""
    pool = _POOL
    sents = pool["sentences"]
    paras, k, step = [], 0, 2 + int(r[0] * 5)
    while k < len(picks):
        paras.append(" ".join([sents[j] for j in picks[k : k + step]]))
        k += step
    if extra:
        paras.append(extra)
    text = "\n".join(paras)
    idx = np.array(picks, np.int64)
    post = pool["posts"][int(r[1] * len(pool["posts"]))]
    slug = "-".join(re.findall(r"[a-z]+", sents[picks[0]].lower())[:6]) or "story"
    when = datetime.fromtimestamp(START + int(r[2] * 3 * 365 * 86400), UTC)
    url = normalize_url(f"https://{post['host']}/{when:%Y/%m/%d}/{slug}-{i}.html") or ""
    return {
        "id": doc_id(url),
        "url": url,
        "final_url": url,
        "domain": post["domain"],
        "host": post["host"],
        # Reddit scores of kept posts: a heavy tail above the minimum of 3.
        "karma": int(min(3 + 4 * ((1 - r[3]) ** (-1 / 1.1) - 1), 2**31 - 1)),
        "subreddits": [post["subreddit"]],
        "first_seen": when,
        "reddit_title": sents[picks[0]][:120],
        "title": None,
        "date": None,
        "text": text,
        "lang": "fr" if r[4] < FRENCH_SHARE else "en",
        "lang_score": 0.7 + 0.3 * float(r[5]),
        "n_chars": len(text),
        "n_words": len(text.split()),
        "n_tokens": int(pool["tokens"][idx].sum()),
        "mean_word_len": float(pool["word_chars"][idx].sum() / max(1, pool["words"][idx].sum())),
        "symbol_word_ratio": 0.0,
        "frac_lines_end_punct": 1.0,
        "dup_line_frac": 0.0,
        "n_stop_words": int(pool["stop"][idx].sum()),
        "bullet_line_frac": 0.0,
        "ellipsis_line_frac": 0.0,
        "boilerplate_hits": 0,
        "wiki_overlap": None,
        # Dead links recovered from an archive, captured some days after the post.
        "source": "wayback" if r[6] < ARCHIVED_SHARE else "live",
        "captured_at": when + timedelta(days=1 + int(r[7] * 30)) if r[6] < ARCHIVED_SHARE else None,
    }


def make_part(args: tuple[Path, int, int, int]) -> int:
    """Docs part `index`: documents first..first+count-1, seeded by the part index."""
    path, index, first, count = args
    rng = np.random.default_rng([7, index])
    made: list[list[int]] = []
    rows = []
    draws = rng.random((count, 8))
    for k in range(count):
        extra = None
        if made and draws[k, 6] < NEAR_COPY_SHARE:
            picks = list(made[int(draws[k, 7] * len(made))])
            if len(picks) > 3:
                picks.pop(int(rng.integers(len(picks))))
                picks[int(rng.integers(len(picks)))] = int(rng.integers(len(_POOL["chars"])))
            extra = BOILERPLATE[int(rng.integers(len(BOILERPLATE)))]
        else:
            picks = _doc_sentences(rng, _POOL)
            made.append(picks)
        rows.append(_row(first + k, picks, extra, draws[k]))
    rows.sort(key=lambda r: r["id"])
    write_table(path, rows_to_table(rows, DOCS_SCHEMA))
    return count


def generate(root: Path, n: int, part_docs: int, pool: dict[str, Any]) -> list[Path]:
    jobs = []
    for index, first in enumerate(range(0, n, part_docs)):
        path = root / "docs" / f"part-{index:05d}.parquet"
        jobs.append((path, index, first, min(part_docs, n - first)))
    (root / "docs").mkdir(parents=True, exist_ok=True)
    with get_context("fork").Pool(2, initializer=_init, initargs=(pool,)) as workers:
        for _ in workers.imap_unordered(make_part, jobs):
            pass
    return [j[0] for j in jobs]


# --- the stages, one child process each --------------------------------------------------------


def _config(root: Path, shard_rows: int) -> CorpusConfig:
    return CorpusConfig.model_validate(
        {"out_dir": str(root), "shards": {"max_rows_per_shard": shard_rows}}
    )


def child(stage: str, root: Path, shard_rows: int) -> dict[str, Any]:
    cfg = _config(root, shard_rows)
    if stage == "filter":
        stats = [filt.run_part(p, root, cfg) for p in sorted((root / "docs").glob("part-*"))]
    elif stage == "dedup":
        stats = dedup.run(sorted((root / "filtered").glob("part-*")), root, cfg)
    elif stage == "shards":
        stats = [shards.run(sorted((root / "dedup").glob("part-*.parquet")), root, cfg)]
    elif stage == "noop":
        runs = [child(s, root, shard_rows)["skipped"] for s in ("filter", "dedup", "shards")]
        return {"parts": sum(map(len, runs)), "skipped": sum(map(sum, runs))}
    else:
        raise SystemExit(f"unknown stage {stage}")
    return {
        "rows_in": sum(s.n_in for s in stats),
        "rows_out": sum(s.n_out for s in stats),
        "skipped": [bool(s.extra.get("skipped")) for s in stats],
    }


def run_child(stage: str, root: Path, shard_rows: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", stage, "--work", str(root)]
    cmd += ["--shard-rows", str(shard_rows)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{stage} failed with exit code {proc.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result.update(
        wall_s=round(wall, 2),
        cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, action="append", help="documents (repeatable)")
    ap.add_argument("--part-docs", type=int, default=25_000, help="documents per docs part")
    ap.add_argument("--shard-rows", type=int, default=25_000, help="shards.max_rows_per_shard")
    ap.add_argument("--work", type=Path, default=Path("/tmp/webtext-scale"))
    ap.add_argument("--keep", action="store_true", help="keep the build folders")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.work, args.shard_rows)))
        return
    t0 = time.process_time()
    pool = build_pool()
    print(
        json.dumps(
            {
                "pool": {
                    "sentences": len(pool["sentences"]),
                    "posts": len(pool["posts"]),
                    "real_page_chars_median": int(np.median(pool["lengths"])),
                    "cpu_s": round(time.process_time() - t0, 1),
                }
            }
        ),
        flush=True,
    )
    for n in args.n or [100_000]:
        root = args.work / f"n{n}"
        shutil.rmtree(root, ignore_errors=True)
        t = time.perf_counter()
        parts = generate(root, n, args.part_docs, pool)
        gen = {"n": n, "step": "generate", "parts": len(parts)}
        gen["wall_s"] = round(time.perf_counter() - t, 1)
        gen["docs_bytes"] = sum(p.stat().st_size for p in parts)
        print(json.dumps(gen), flush=True)
        for stage in ("filter", "dedup", "shards"):
            res = run_child(stage, root, args.shard_rows)
            res.update(n=n, step=stage)
            res["cpu_ms_per_doc"] = round(1000 * res["cpu_s"] / max(1, res["rows_in"]), 3)
            res["wall_ms_per_doc"] = round(1000 * res["wall_s"] / max(1, res["rows_in"]), 3)
            del res["skipped"]
            print(json.dumps(res), flush=True)
        noop = run_child("noop", root, args.shard_rows)
        noop.update(n=n, step="noop_rebuild")
        print(json.dumps(noop), flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
