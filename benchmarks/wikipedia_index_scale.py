"""The Wikipedia n-gram index at full size: build and lookups with hundreds of millions of
n-grams, where the sample dump's index (a few hundred thousand) fits in the CPU caches.

1. Generates a reference in the layout of the wikimedia/wikipedia Parquet dataset (id, url,
   title, text; the fast source for a whole Wikipedia) until it holds --ngrams raw word
   n-grams: articles of 4-12 paragraphs of 40-120 words. 90% of paragraphs draw their words
   from the real vocabulary of the enwiki sample with its Zipf-like frequencies (so their
   n-grams are nearly all distinct, as in Wikipedia); 10% are real paragraphs of the sample,
   repeated (boilerplate and copies: duplicate n-grams the build must merge).
2. Builds the index with `wiki_index.build_index` in a child process: wall and CPU time,
   peak RSS of that process, n-grams, bytes per n-gram.
3. In another child process, against the memory-mapped index: paragraph stripping of ~1,400-
   token documents (real Scrapinghub news paragraphs, every 4th document quoting 1-3
   paragraphs of the generated reference): docs/s by CPU time and wall time; and raw lookups
   per second (sorted batches of 1M hashes, half of them present).

Leaves out: markup stripping (a pages-articles dump parsed with mwparserfromhell costs
0.37 M wikitext chars/s per core: benchmarks/wikipedia_overlap.py), and a cold page cache
(lookups are measured after one warm-up pass, as a filter part that runs after the build
finds them). Wall times are disturbed by whatever else runs on the machine; CPU times less.

Prints JSON lines. Usage:
  python benchmarks/wikipedia_index_scale.py --ngrams 500000000 --work /tmp/wiki-scale
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.config import WikipediaConfig

SAMPLE = REPO.parent / "shared/data/wikipedia/enwiki-sample-pages-articles.xml.bz2"
GOLD = REPO.parent / "shared/data/extraction/scrapinghub/ground-truth.json"
ROWS_PER_FILE = 25_000


def _sample_articles() -> list[str]:
    from pipeline.filter import wiki_sources

    return [wiki_sources.strip_markup(t) for _, t in wiki_sources.iter_pages(SAMPLE)]


def generate(target: int, n: int, out: Path, seed: int = 0) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    articles = _sample_articles()
    words = [w for a in articles for w in a.split()]
    vocab, counts = np.unique(np.array(words, dtype=object), return_counts=True)
    cum = np.cumsum(counts / counts.sum())
    real = [p for a in articles for p in a.split("\n") if len(p.split()) >= 40]
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    raw = n_articles = n_words = n_files = 0
    while raw < target:
        n_paras = rng.integers(4, 13, ROWS_PER_FILE)
        lengths = rng.integers(40, 121, int(n_paras.sum()))
        copied = rng.random(lengths.size) < 0.1
        ids = np.minimum(np.searchsorted(cum, rng.random(int(lengths.sum()))), vocab.size - 1)
        drawn = vocab[ids]
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        paras = []
        for j in range(lengths.size):
            if copied[j]:
                p = real[int(rng.integers(0, len(real)))]
                k = len(p.split())
            else:
                k = int(lengths[j])
                p = " ".join(drawn[offsets[j] : offsets[j + 1]])
            paras.append(p)
            raw += max(k - n + 1, 0)
            n_words += k
            if raw >= target:
                break
        bounds = np.concatenate(([0], np.cumsum(n_paras)))
        bounds = bounds[bounds < len(paras)].tolist() + [len(paras)]
        texts = ["\n".join(paras[a:b]) for a, b in itertools.pairwise(bounds)]
        n_articles += len(texts)
        first = n_articles - len(texts)
        ids_col = [str(first + i) for i in range(len(texts))]
        table = pa.table(
            {
                "id": ids_col,
                "url": [f"https://en.wikipedia.org/wiki?curid={i}" for i in ids_col],
                "title": [f"Article {i}" for i in ids_col],
                "text": texts,
            }
        )
        pq.write_table(table, out / f"train-{n_files:05d}.parquet", compression="zstd")
        n_files += 1
    return {"articles": n_articles, "words": n_words, "raw_ngrams_planned": raw, "files": n_files}


def _child(code: str) -> tuple[dict, dict[str, float]]:
    """Run code in a fresh interpreter; its last stdout line is JSON. Returns it and the
    child's rusage (peak RSS, CPU)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    usage = {
        "wall_s": round(wall, 2),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
    }
    return json.loads(proc.stdout.strip().splitlines()[-1]), usage


# Peak RSS of the child itself: VmHWM belongs to the address space made at exec, while
# ru_maxrss also keeps the parent's peak from before the exec (Linux carries it over).
ANON = (
    "round(int([x for x in open('/proc/self/status') if x.startswith('RssAnon')][0].split()[1])"
    " / 1024, 1)"
)
HWM = (
    "round(int([x for x in open('/proc/self/status') if x.startswith('VmHWM')][0].split()[1])"
    " / 1024, 1)"
)

BUILD = """
import json, resource, sys
sys.path.insert(0, {repo!r})
from pipeline.filter import wiki_index
meta = wiki_index.build_index([{src!r}], __import__("pathlib").Path({dst!r}), {n})
meta["self_peak_rss_mb"] = {hwm}
print(json.dumps(meta))
"""

LOOKUP = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
sys.path.insert(0, {bench!r})
from pathlib import Path
import numpy as np
import pyarrow.parquet as pq
from pipeline.filter import wiki_index
from pipeline.filter.wiki_strip import strip_paragraphs
from wikipedia_overlap import make_docs

index = wiki_index.load_index(Path({dst!r}))
t0 = time.perf_counter()
for arr in (index.hashes, index.directory):  # one pass: the maps are paged in
    for start in range(0, arr.size, 1 << 26):
        np.asarray(arr[start : start + (1 << 26)]).sum()
warm_s = time.perf_counter() - t0
first = sorted(Path({src!r}).glob("*.parquet"))[0]
texts = pq.read_table(first, columns=["text"]).column("text").to_pylist()[:20000]
paras = [p for t in texts for p in t.split("\\n") if len(p.split()) >= 40]
docs = make_docs({docs}, {words}, paras)
strip_paragraphs(docs[:50], index, {n}, {threshold})
runs = []
for _ in range(3):
    c0, w0 = time.process_time(), time.perf_counter()
    res = strip_paragraphs(docs, index, {n}, {threshold})
    runs.append((time.process_time() - c0, time.perf_counter() - w0))
cpu = sorted(r[0] for r in runs)[1]
wall = sorted(r[1] for r in runs)[1]
rng = np.random.default_rng(1)
present = np.asarray(index.hashes[rng.integers(0, index.size, 500_000)])
queries = np.concatenate([present, rng.integers(0, 2**63, 500_000, dtype=np.uint64)])
rng.shuffle(queries)
c0 = time.process_time()
for _ in range(5):
    found = index.contains(queries)
lookup_cpu = (time.process_time() - c0) / 5
print(json.dumps({{
    "warm_s": round(warm_s, 2),
    "docs": len(docs),
    "docs_stripped": sum(bool(r.removed) for r in res),
    "docs_quoting": (len(docs) + 3) // 4,
    "strip_cpu_s": round(cpu, 3),
    "strip_wall_s": round(wall, 3),
    "docs_per_cpu_s": round(len(docs) / cpu, 1),
    "docs_per_wall_s": round(len(docs) / wall, 1),
    "lookups_per_cpu_s": round(queries.size / lookup_cpu),
    "lookup_found_share": round(float(found.mean()), 4),
    "self_peak_rss_mb": {hwm},
    "private_rss_mb": {anon},
}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ngrams", type=int, default=500_000_000)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--words", type=int, default=730, help="~1,400 GPT-2 tokens of news text")
    ap.add_argument("--skip-generate", action="store_true")
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = WikipediaConfig().ngram
    threshold = WikipediaConfig().paragraph_overlap
    src, dst = args.work / "reference", args.work / "index"
    if args.generate_only:
        t0 = time.perf_counter()
        gen = generate(args.ngrams, n, src)
        size = sum(p.stat().st_size for p in src.glob("*.parquet"))
        print(
            json.dumps(
                {
                    "bench": "wikipedia_reference_generated",
                    **gen,
                    "parquet_gb": round(size / 1e9, 2),
                    "wall_s": round(time.perf_counter() - t0, 1),
                }
            ),
            flush=True,
        )
        return
    if not args.skip_generate:  # in a child, so that this process stays small
        cmd = [sys.executable, __file__, "--generate-only", "--ngrams", str(args.ngrams)]
        subprocess.run([*cmd, "--work", str(args.work)], check=True)
    meta, usage = _child(BUILD.format(repo=str(REPO), src=str(src), dst=str(dst), n=n, hwm=HWM))
    index_bytes = sum((dst / f).stat().st_size for f in ("ngrams.u64", "directory.u64"))
    print(
        json.dumps(
            {
                "bench": "wikipedia_index_build_full_size",
                "ngram": n,
                "raw_ngrams": meta["raw_ngrams"],
                "ngrams": meta["ngrams"],
                "texts": meta["texts"],
                "index_gb": round(index_bytes / 1e9, 2),
                "bytes_per_ngram": round(index_bytes / max(meta["ngrams"], 1), 2),
                "raw_ngrams_per_wall_s": round(meta["raw_ngrams"] / usage["wall_s"]),
                "raw_ngrams_per_cpu_s": round(meta["raw_ngrams"] / usage["cpu_s"]),
                "peak_rss_mb": meta["self_peak_rss_mb"],
                **{k: v for k, v in usage.items() if k != "peak_rss_mb"},
            }
        ),
        flush=True,
    )
    out, usage = _child(
        LOOKUP.format(
            repo=str(REPO),
            bench=str(REPO / "benchmarks"),
            src=str(src),
            dst=str(dst),
            n=n,
            threshold=threshold,
            docs=args.docs,
            words=args.words,
            hwm=HWM,
            anon=ANON,
        )
    )
    print(
        json.dumps(
            {
                "bench": "wikipedia_lookup_full_size",
                "index_ngrams": meta["ngrams"],
                **out,
                "process_wall_s": usage["wall_s"],
                "note": "peak RSS counts the pages of the memory-mapped index that the process "
                "touched (shared page cache, not private memory); private_rss_mb is the "
                "process's own memory at the end",
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
