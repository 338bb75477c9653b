"""Wikipedia overlap throughput: index build (articles/s, n-grams) from the sample dump, and
overlap lookups per second for ~1,400-token documents on one core (normalization included).

Prints JSON lines. Usage: python benchmarks/wikipedia_overlap.py [--docs 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.filter import wikipedia

DUMP = REPO.parent / "shared/data/wikipedia/enwiki-sample-pages-articles.xml.bz2"
GOLD = REPO.parent / "shared/data/extraction/scrapinghub/ground-truth.json"


def make_docs(n: int, words_per_doc: int, wiki_words: list[str], seed: int = 0) -> list[str]:
    """Web-article text (real news bodies); a quarter of them two-thirds Wikipedia."""
    data = json.loads(GOLD.read_text())
    words = " ".join(data[k]["articleBody"] for k in sorted(data)).split(" ")
    rng = np.random.default_rng(seed)
    docs = []
    for i, s in enumerate(rng.integers(0, len(words) - words_per_doc, n)):
        doc = words[s : s + words_per_doc]
        if i % 4 == 0:
            # two thirds copied: above the default threshold of 0.5
            k = 2 * words_per_doc // 3
            w = int(rng.integers(0, len(wiki_words) - k))
            doc = doc[: words_per_doc - k] + wiki_words[w : w + k]
        docs.append(" ".join(doc))
    return docs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument(
        "--words", type=int, default=800, help="800 words ~ 1,400 GPT-2 tokens (news + wiki mix)"
    )
    ap.add_argument("--ngram", type=int, default=13)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    builds = []
    for _ in range(args.repeat):
        t0 = time.process_time()
        index, stats = wikipedia.build_index(DUMP, args.ngram)
        builds.append((time.process_time() - t0, stats))
    cpu = statistics.median(b[0] for b in builds)
    stats = builds[0][1]
    print(
        json.dumps(
            {
                "bench": "wikipedia_index_build",
                "dump": DUMP.name,
                "dump_bytes": DUMP.stat().st_size,
                "articles": stats["articles"],
                "ngrams": stats["ngrams"],
                "index_bytes": int(index.nbytes),
                "cpu_s": round(cpu, 3),
                "articles_per_s": round(stats["articles"] / cpu, 1),
                "ngrams_per_s": round(stats["ngrams"] / cpu),
                "dump_mb_per_s": round(DUMP.stat().st_size / 1e6 / cpu, 2),
            }
        )
    )

    wiki_words = " ".join(t for _, t in wikipedia.iter_articles(DUMP)).split()
    docs = make_docs(args.docs, args.words, wiki_words)
    try:
        import tiktoken

        enc = tiktoken.get_encoding("r50k_base")
        tokens: float | None = float(np.mean([len(enc.encode_ordinary(d)) for d in docs[:200]]))
    except Exception:  # noqa: BLE001 - offline without a seeded cache: report words only
        tokens = None
    wikipedia.overlaps(docs[:50], index, args.ngram)  # warm
    runs = []
    for _ in range(args.repeat):
        t0 = time.process_time()
        ov = wikipedia.overlaps(docs, index, args.ngram)
        runs.append(time.process_time() - t0)
    cpu = statistics.median(runs)
    print(
        json.dumps(
            {
                "bench": "wikipedia_overlap_lookup",
                "docs": args.docs,
                "words_per_doc": args.words,
                "mean_tokens": tokens,
                "index_ngrams": int(index.size),
                "cpu_s": round(cpu, 3),
                "docs_per_s": round(args.docs / cpu, 1),
                "flagged_at_0.5": int((ov > 0.5).sum()),
                "with_passage": (args.docs + 3) // 4,
            }
        )
    )


if __name__ == "__main__":
    main()
