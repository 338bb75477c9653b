"""Dedup throughput and memory: signatures per second on one core for ~1,400-token documents
(normalization included), and the clustering index's peak memory scaled to a million documents.

Prints JSON lines. Usage: python benchmarks/dedup_signatures.py [--docs 3000] [--index-docs 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.config import DedupConfig
from pipeline.core.ngrams import normalize, text_hash
from pipeline.dedup import lsh
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


def bench_index(n: int, dup_frac: float = 0.05, seed: int = 0) -> dict:
    """Peak traced memory of lsh.cluster over n signatures (ids, hashes, signatures, band keys,
    candidate pairs, union-find) with a share of near copies, scaled to 10^6 documents."""
    cfg = DedupConfig()
    rng = np.random.default_rng(seed)
    n_dup = int(n * dup_frac)
    tracemalloc.start()
    sigs = rng.integers(0, 2**32, (n, cfg.num_perm), dtype=np.uint32)
    # Near copies: the first n_dup documents again with 10% of their values changed.
    src = rng.integers(0, n - n_dup, n_dup)
    sigs[n - n_dup :] = sigs[src]
    flip = rng.random((n_dup, cfg.num_perm)) < 0.1
    sigs[n - n_dup :][flip] = rng.integers(0, 2**32, int(flip.sum()), dtype=np.uint32)
    inp = lsh.ClusterInput(
        ids=[f"{i:016x}" for i in range(n)],
        text_hashes=[f"{i:032x}" for i in range(n)],
        karma=rng.integers(3, 1000, n).astype(np.int64),
        first_seen=np.zeros(n, dtype=np.int64),
        signatures=sigs,
        is_reference=np.zeros(n, dtype=bool),
    )
    base, _ = tracemalloc.get_traced_memory()
    t = time.perf_counter()
    res = lsh.cluster(inp, cfg.threshold, cfg.bands, cfg.rows, cfg.confirm_z)
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dropped = int((res.kept != np.arange(n)).sum())
    return {
        "bench": "dedup_index",
        "docs": n,
        "near_copies": n_dup,
        "dropped": dropped,
        "candidates": res.n_candidates,
        "cluster_seconds": round(elapsed, 2),
        "input_bytes_per_million": round(base / n * 1e6),
        "peak_bytes_per_million": round(peak / n * 1e6),
        "peak_gb_per_million": round(peak / n * 1e6 / 1e9, 3),
        "goal_gb_per_million": 1.0,
        "signature_bytes_per_million": cfg.num_perm * 4 * 10**6,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--words", type=int, default=750)
    ap.add_argument("--index-docs", type=int, default=200_000)
    args = ap.parse_args()
    print(json.dumps(bench_signatures(args.docs, args.words)), flush=True)
    print(json.dumps(bench_index(args.index_docs)), flush=True)


if __name__ == "__main__":
    main()
