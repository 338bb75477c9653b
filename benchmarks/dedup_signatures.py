"""Dedup throughput: signatures per second on one core for ~1,400-token documents
(normalization included). The clustering index's memory at size: benchmarks/dedup_scale.py.

Prints JSON lines. Usage: python benchmarks/dedup_signatures.py [--docs 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.config import DedupConfig
from pipeline.core.ngrams import normalize, text_hash
from pipeline.dedup.minhash import signatures

GOLD = REPO.parent / "shared/data/extraction/scrapinghub/ground-truth.json"


def make_docs(n: int, words_per_doc: int, seed: int = 0) -> list[str]:
    """Documents cut from the real article bodies (1,050 words ~ 1,400 GPT-2 tokens)."""
    data = json.loads(GOLD.read_text())
    words = " ".join(data[k]["articleBody"] for k in sorted(data)).split(" ")
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(words) - words_per_doc, n)
    return [" ".join(words[s : s + words_per_doc]) for s in starts]


def bench_signatures(n: int, words: int) -> dict:
    cfg = DedupConfig()
    docs = make_docs(n, words)
    import tiktoken

    try:
        enc = tiktoken.get_encoding("r50k_base")
        tokens = float(np.mean([len(enc.encode_ordinary(d)) for d in docs[:200]]))
    except Exception:  # noqa: BLE001 - offline without a seeded cache: report words only
        tokens = None
    signatures([normalize(d) for d in docs[:50]], cfg.num_perm, cfg.seed, cfg.ngram)  # warm
    t0 = time.process_time()
    w0 = time.perf_counter()
    norm = [normalize(d) for d in docs]
    hashes = [text_hash(t) for t in norm]
    t1 = time.process_time()
    sigs = signatures(norm, cfg.num_perm, cfg.seed, cfg.ngram)
    t2 = time.process_time()
    wall = time.perf_counter() - w0
    assert sigs.shape == (n, cfg.num_perm) and len(hashes) == n
    return {
        "bench": "dedup_signatures",
        "docs": n,
        "mean_words": words,
        "mean_tokens_r50k": tokens,
        "num_perm": cfg.num_perm,
        "normalize_hash_docs_per_s": round(n / (t1 - t0)),
        "minhash_docs_per_s": round(n / (t2 - t1)),
        "total_docs_per_s_cpu": round(n / (t2 - t0)),
        "total_docs_per_s_wall": round(n / wall),
        "goal_docs_per_s": 2500,
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--words", type=int, default=750)
    args = ap.parse_args()
    print(json.dumps(bench_signatures(args.docs, args.words)), flush=True)


if __name__ == "__main__":
    main()
