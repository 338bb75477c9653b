"""Wikipedia by content, measured on the real sample dump and real news text, one core unless
said otherwise:

- markup: mwparserfromhell stripping (pipeline.filter.wiki_sources.strip_markup), articles/s and
  wikitext characters/s;
- index build: from the dump (parsing in 2 processes) and from the same text as .txt (no
  parsing: what the wikimedia/wikipedia Parquet source costs), n-grams/s, bytes per n-gram,
  peak RSS of the building process;
- paragraph stripping (pipeline.filter.wiki_strip): documents of ~1,400 GPT-2 tokens, one
  paragraph per line, a quarter of them quoting 1-3 Wikipedia paragraphs; docs/s.

Leaves out: the sample's index (a few million n-grams, tens of MB) fits in the CPU caches and
RAM; lookups against a full English Wikipedia index (billions of n-grams, memory-mapped) are
slower and are not measured here.

Prints JSON lines. Usage: python benchmarks/wikipedia_overlap.py [--docs 3000] [--repeat 3]
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.config import WikipediaConfig
from pipeline.filter import wiki_index, wiki_sources
from pipeline.filter.wiki_strip import strip_paragraphs

DUMP = REPO.parent / "shared/data/wikipedia/enwiki-sample-pages-articles.xml.bz2"
GOLD = REPO.parent / "shared/data/extraction/scrapinghub/ground-truth.json"


def make_docs(n: int, words_per_doc: int, wiki_paras: list[str], seed: int = 0) -> list[str]:
    """News paragraphs (real article bodies) up to words_per_doc; every 4th quotes 1-3
    Wikipedia paragraphs."""
    data = json.loads(GOLD.read_text())
    paras = [p for k in sorted(data) for p in data[k]["articleBody"].split("\n") if p.strip()]
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        lines: list[str] = []
        words = 0
        if i % 4 == 0:
            for j in rng.integers(0, len(wiki_paras), int(rng.integers(1, 4))):
                lines.append(wiki_paras[j])
                words += len(wiki_paras[j].split())
        while words < words_per_doc:
            p = paras[int(rng.integers(0, len(paras)))]
            lines.insert(int(rng.integers(0, len(lines) + 1)), p)
            words += len(p.split())
        docs.append("\n".join(lines))
    return docs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--words", type=int, default=730, help="~1,400 GPT-2 tokens of news text")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = WikipediaConfig().ngram
    threshold = WikipediaConfig().paragraph_overlap

    pages = list(wiki_sources.iter_pages(DUMP))
    chars = sum(len(t) for _, t in pages)
    runs = []
    for _ in range(args.repeat):
        t0 = time.process_time()
        articles = [wiki_sources.strip_markup(t) for _, t in pages]
        runs.append(time.process_time() - t0)
    cpu = statistics.median(runs)
    print(
        json.dumps(
            {
                "bench": "wikipedia_markup_mwparserfromhell",
                "articles": len(pages),
                "wikitext_chars": chars,
                "cpu_s": round(cpu, 3),
                "articles_per_s": round(len(pages) / cpu, 1),
                "wikitext_mchars_per_s": round(chars / cpu / 1e6, 3),
                "note": "one core; the sample's articles are long (55k chars of wikitext on "
                "average, enwiki's mean is nearer 5k)",
            }
        )
    )

    with tempfile.TemporaryDirectory() as tmp:
        txt = Path(tmp) / "wiki.txt"
        txt.write_text("\n".join(articles) + "\n", encoding="utf-8")
        for name, source, procs in (("dump", DUMP, 2), ("txt", txt, 1)):
            t0 = time.perf_counter()
            meta = wiki_index.build_index([source], Path(tmp) / name, n, processes=procs)
            wall = time.perf_counter() - t0
            print(
                json.dumps(
                    {
                        "bench": f"wikipedia_index_build_{name}",
                        "ngram": n,
                        "processes": procs,
                        "raw_ngrams": meta["raw_ngrams"],
                        "ngrams": meta["ngrams"],
                        "bytes_per_ngram": 8,
                        "wall_s": round(wall, 3),
                        "raw_ngrams_per_s": round(meta["raw_ngrams"] / wall),
                        "peak_rss_mb": round(
                            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                        ),
                    }
                )
            )
        index = wiki_index.load_index(Path(tmp) / "txt")
        wiki_paras = [p for a in articles for p in a.split("\n") if len(p.split()) >= 40]
        docs = make_docs(args.docs, args.words, wiki_paras)
        try:
            import tiktoken

            enc = tiktoken.get_encoding("r50k_base")
            tokens: float | None = float(np.mean([len(enc.encode_ordinary(d)) for d in docs[:300]]))
        except Exception:  # noqa: BLE001 - offline without a seeded cache: report words only
            tokens = None
        strip_paragraphs(docs[:50], index, n, threshold)  # warm
        runs = []
        for _ in range(args.repeat):
            t0 = time.process_time()
            res = strip_paragraphs(docs, index, n, threshold)
            runs.append(time.process_time() - t0)
        cpu = statistics.median(runs)
        print(
            json.dumps(
                {
                    "bench": "wikipedia_paragraph_strip",
                    "docs": args.docs,
                    "mean_tokens": tokens,
                    "ngram": n,
                    "threshold": threshold,
                    "index_ngrams": int(index.size),
                    "cpu_s": round(cpu, 3),
                    "docs_per_s": round(args.docs / cpu, 1),
                    "docs_stripped": sum(bool(r.removed) for r in res),
                    "docs_quoting": (args.docs + 3) // 4,
                }
            )
        )


if __name__ == "__main__":
    main()
