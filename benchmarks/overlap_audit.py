"""Overlap audit throughput and memory: GPT-2's 8-gram audit of ALL the evaluation sets in
../shared/data/evalsets (PTB, LAMBADA jsonl, CBT test books, 1BW held-out) against a generated
build folder of ~1,400-token documents made of real news paragraphs (the Scrapinghub gold
bodies, paragraph lines kept), 1% of them with a LAMBADA passage and 1% with a PTB line
planted.

Prints JSON lines: the eval index build (seconds, distinct 8-grams, bytes), the audit of the
build folder's dedup parts (corpus tokens/s and docs/s, one core, the whole `audit` call minus
the index build) with the peak RSS of a fresh process that ran only the audit, at two corpus
sizes (memory must not grow with the corpus), and the shards path that decodes BPE tokens
(no text column). Usage: python benchmarks/overlap_audit.py [--docs 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.tokenizer import EOT_ID, get_encoding
from pipeline.overlap import EvalIndex, audit

DATA = REPO.parent / "shared/data"
GOLD = DATA / "extraction/scrapinghub/ground-truth.json"
EVAL = DATA / "evalsets"
EVAL_SETS = {
    "ptb": EVAL / "ptb.test.txt",
    "lambada": EVAL / "lambada_test.jsonl",
    "cbt": EVAL / "cbt_test.txt",
    "1bw": EVAL / "1b_benchmark.dev.tokens",
}
LEAVES_OUT = [
    "more than one core: the audit is one process (parts could go to workers, found flags OR-ed)",
    "cold reads: the corpus files were just written and sit in the page cache",
    "remote storage (fsspec paths)",
    "CBT question files, 1BW's standard test shard, enwik8/text8: not in ../shared/data",
    "writing the corpus (generation and Parquet writes are not timed)",
]


def make_docs(n: int, target_tokens: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """~target_tokens-token documents of real news paragraphs, one paragraph per line."""
    data = json.loads(GOLD.read_text())
    paras = [p.strip() for k in sorted(data) for p in data[k]["articleBody"].split("\n")]
    paras = [p for p in paras if p]
    enc = get_encoding()
    para_tokens = [len(t) for t in enc.encode_ordinary_batch(paras)]
    lambada = [json.loads(line)["text"] for line in EVAL_SETS["lambada"].open()]
    ptb = [line for line in EVAL_SETS["ptb"].read_text().split("\n") if len(line.split()) >= 8]
    rng = np.random.default_rng(seed)
    docs, tokens = [], []
    for i in range(n):
        chosen, total = [], 0
        while True:
            j = int(rng.integers(len(paras)))
            if chosen and total + para_tokens[j] // 2 > target_tokens:
                break
            chosen.append(paras[j])
            total += para_tokens[j]
        if i % 100 == 7:
            chosen.insert(len(chosen) // 2, lambada[int(rng.integers(len(lambada)))])
        elif i % 100 == 57:
            chosen.insert(len(chosen) // 2, ptb[int(rng.integers(len(ptb)))])
        docs.append("\n".join(chosen))
    for lo in range(0, n, 1000):
        tokens += [len(t) for t in enc.encode_ordinary_batch(docs[lo : lo + 1000], num_threads=2)]
    return docs, tokens


def write_build(root: Path, docs: list[str], tokens: list[int], parts: int = 4) -> None:
    step = -(-len(docs) // parts)
    for p in range(parts):
        lo, hi = p * step, min(len(docs), (p + 1) * step)
        table = pa.table(
            {
                "id": [f"{i:012x}" for i in range(lo, hi)],
                "url": [f"https://news{i % 97}.example/{i}" for i in range(lo, hi)],
                "text": docs[lo:hi],
                "n_tokens": pa.array(tokens[lo:hi], pa.int32()),
            }
        )
        (root / "dedup").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / "dedup" / f"part-{p:05d}.parquet", compression="zstd")


def write_token_shards(folder: Path, docs: list[str]) -> None:
    enc = get_encoding()
    ids = [t + [EOT_ID] for t in enc.encode_ordinary_batch(docs, num_threads=2)]
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "id": [f"{i:012x}" for i in range(len(docs))],
            "url": [f"https://news{i % 97}.example/{i}" for i in range(len(docs))],
            "n_tokens": pa.array([len(t) for t in ids], pa.int32()),
            "tokens": pa.array(ids, pa.list_(pa.uint16())),
        }
    )
    pq.write_table(table, folder / "train-00000-of-00001.parquet", compression="zstd")
    (folder / "manifest.json").write_text("{}")


def child(corpus: str) -> None:
    """Run one audit in this (fresh) process; print its figures and peak RSS."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = audit(Path(corpus), EVAL_SETS)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's peak over the exec).
    status = Path("/proc/self/status").read_text()
    hwm = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    peak = int(hwm[0]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak, "result": result}))


def run_child(corpus: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(corpus)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--tokens", type=int, default=1400, help="tokens per document")
    ap.add_argument("--decode-docs", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return

    builds = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        index = EvalIndex.build(EVAL_SETS, 8)
        builds.append(time.perf_counter() - t0)
    index_s = statistics.median(builds)
    print(
        json.dumps(
            {
                "bench": "overlap_eval_index",
                "sets": {
                    s.name: {"examples": s.examples, "ngrams": int(s.hashes.size)}
                    for s in index.sets
                },
                "distinct_8grams": index.size,
                "index_bytes": index.nbytes,
                "build_s": round(index_s, 3),
            }
        )
    )

    with tempfile.TemporaryDirectory() as tmp:
        small_n = max(1, args.docs // 4)
        docs, tokens = make_docs(args.docs, args.tokens)
        for label, n in (("small", small_n), ("full", args.docs)):
            root = Path(tmp) / label
            write_build(root, docs[:n], tokens[:n])
            runs = [run_child(root) for _ in range(args.repeat)]
            wall = statistics.median(r["wall_s"] for r in runs)
            corpus_s = wall - index_s
            res = runs[0]["result"]
            n_tokens = res["corpus"]["tokens"]
            print(
                json.dumps(
                    {
                        "bench": "overlap_audit_build_folder",
                        "docs": n,
                        "mean_tokens": round(n_tokens / n, 1),
                        "corpus_tokens": n_tokens,
                        "audit_wall_s": round(wall, 3),
                        "audit_walls_s": [round(r["wall_s"], 3) for r in runs],
                        "corpus_s": round(corpus_s, 3),
                        "tokens_per_s": round(n_tokens / corpus_s),
                        "docs_per_s": round(n / corpus_s, 1),
                        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
                        "found": {
                            k: [v["ngrams_found"], v["examples_with_overlap"]]
                            for k, v in res["eval_sets"].items()
                        },
                        "leaves_out": LEAVES_OUT,
                    }
                )
            )
        n = min(args.decode_docs, len(docs))
        folder = Path(tmp) / "shards"
        write_token_shards(folder, docs[:n])
        r = run_child(folder)
        print(
            json.dumps(
                {
                    "bench": "overlap_audit_token_shards",
                    "docs": n,
                    "corpus_tokens": r["result"]["corpus"]["tokens"],
                    "audit_wall_s": round(r["wall_s"], 3),
                    "tokens_per_s": round(
                        r["result"]["corpus"]["tokens"] / (r["wall_s"] - index_s)
                    ),
                    "docs_per_s": round(n / (r["wall_s"] - index_s), 1),
                    "peak_rss_mb": round(r["peak_rss_mb"], 1),
                    "note": "no text column: BPE tokens decoded with tiktoken, final EOT dropped",
                }
            )
        )


if __name__ == "__main__":
    main()
