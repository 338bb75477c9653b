"""Dedup's global clustering at size: wall, CPU and peak RSS of the real driver step
(`pipeline.dedup.driver.decide` over signature parts, as `dedup.run` calls it, then every
part's decisions materialized as the per-part step does), in memory and spilled to disk.

Input, generated once per size into --work: signature parts (SIGNATURE_SCHEMA, 100k rows each)
with the pipeline's ids (blake2b of a normalized URL via schemas.records.doc_id, so in no
particular order), karma from a heavy-tailed distribution (>= 3), first_seen spread over
2006-2017, and MinHash-like signatures: random originals, 1.5% near copies (2-20% of values
changed, a third of them copies of documents in earlier parts), 0.3% exact copies (same text
hash and signature) and one template copied 3,000 times (crowded LSH buckets).

Each run is a child process; its peak RSS is its own ru_maxrss, and the figure per million
documents is (peak - the baseline of a child that only imports the pipeline) / N. Every run
prints a digest of the decisions: equal digests mean the same kept document for every row.

Prints JSON lines. Usage:
  python benchmarks/dedup_scale.py --sizes 1000000 2000000 4000000 [--spill-sizes 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.config import DedupConfig
from pipeline.core.io import write_table
from schemas.records import SIGNATURE_SCHEMA, doc_id

PART_ROWS = 100_000
NEAR_FRAC = 0.015
EXACT_FRAC = 0.003
TEMPLATE_COPIES = 3_000
START, END = 1_136_073_600, 1_514_764_799  # 2006-01-01 .. 2017-12-31


def _near(rng: np.random.Generator, src: np.ndarray) -> np.ndarray:
    out = src.copy()
    frac = rng.uniform(0.02, 0.2, len(src))
    change = rng.random(src.shape) < frac[:, None]
    out[change] = rng.integers(0, 2**32, int(change.sum()), dtype=np.uint32)
    return out


def generate(root: Path, n: int, num_perm: int, seed: int = 0) -> int:
    """Signature parts of n documents under root/dedup/signatures; returns the part count."""
    out = root / "dedup" / "signatures"
    done = root / "generated.json"
    if done.exists() and json.loads(done.read_text()) == {"n": n, "seed": seed}:
        return len(list(out.glob("part-*.parquet")))
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    template = rng.integers(0, 2**32, num_perm, dtype=np.uint32)
    pool = np.empty((0, num_perm), dtype=np.uint32)  # earlier parts' documents, for copies
    pool_hash: list[str] = []
    n_parts = (n + PART_ROWS - 1) // PART_ROWS
    template_per_part = TEMPLATE_COPIES // n_parts + 1
    for p in range(n_parts):
        rows = min(PART_ROWS, n - p * PART_ROWS)
        sigs = rng.integers(0, 2**32, (rows, num_perm), dtype=np.uint32)
        hashes = [f"{x:016x}{y:016x}" for x, y in rng.integers(0, 2**63, (rows, 2)).tolist()]
        n_near, n_exact = int(rows * NEAR_FRAC), int(rows * EXACT_FRAC)
        slots = rng.permutation(rows)
        near, exact = slots[:n_near], slots[n_near : n_near + n_exact]
        tmpl = slots[n_near + n_exact : n_near + n_exact + min(template_per_part, rows // 10)]
        sources = slots[n_near + n_exact + len(tmpl) :]
        local = rng.choice(sources, n_near)
        sigs[near] = _near(rng, sigs[local])
        if len(pool):  # a third of the near copies and all exact ones come from earlier parts
            far = near[: n_near // 3]
            sigs[far] = _near(rng, pool[rng.integers(0, len(pool), len(far))])
            pick = rng.integers(0, len(pool), n_exact)
            sigs[exact] = pool[pick]
            for e, k in zip(exact.tolist(), pick.tolist()):
                hashes[e] = pool_hash[k]
        else:
            pick = rng.choice(sources, n_exact)
            sigs[exact] = sigs[pick]
            for e, k in zip(exact.tolist(), pick.tolist()):
                hashes[e] = hashes[k]
        sigs[tmpl] = _near(rng, np.tile(template, (len(tmpl), 1)))
        keep = rng.choice(sources, min(2_000, len(sources)), replace=False)
        pool = np.concatenate((pool, sigs[keep]))[-20_000:]
        pool_hash = (pool_hash + [hashes[k] for k in keep.tolist()])[-20_000:]
        site = rng.integers(0, 200_000, rows)
        ids = [
            doc_id(f"https://www.site{s}.example/news/{p}/{i}-story.html")
            for i, s in enumerate(site.tolist())
        ]
        karma = (3 + rng.pareto(1.2, rows) * 5).astype(np.int32)
        first_seen = rng.integers(START, END, rows)
        table = pa.table(
            {
                "id": pa.array(ids, pa.string()),
                "text_hash": pa.array(hashes, pa.string()),
                "karma": pa.array(karma, pa.int32()),
                "first_seen": pa.array(first_seen, pa.int64()).cast(
                    SIGNATURE_SCHEMA.field("first_seen").type
                ),
                "signature": pa.FixedSizeListArray.from_arrays(
                    pa.array(sigs.ravel(), pa.uint32()), num_perm
                ).cast(pa.list_(pa.uint32())),
            },
            schema=SIGNATURE_SCHEMA,
        )
        write_table(out / f"part-{p:05d}.parquet", table, row_group_size=16_384)
    done.write_text(json.dumps({"n": n, "seed": seed}))
    return n_parts


def child(root: Path, spill_above: int, baseline: bool) -> dict:
    """One run in this (fresh) process."""
    from pipeline.dedup import driver

    if baseline:
        import pipeline.dedup.lsh  # noqa: F401

        return {"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    cfg = DedupConfig(spill_above=spill_above)
    sig_paths = {p.stem: p for p in sorted((root / "dedup" / "signatures").glob("part-*.parquet"))}
    c0, w0 = time.process_time(), time.perf_counter()
    dec = driver.decide(sig_paths, cfg, root)
    digest = hashlib.sha256()
    dropped = {"exact_duplicate": 0, "near_duplicate": 0}
    for part in sorted(sig_paths):  # what each part's step does with its decisions
        d = dec[part]
        for kept, reason in zip(d.kept_id, d.reason):
            digest.update(f"{kept}|{reason}\n".encode())
            if reason is not None:
                dropped[reason] += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "docs": int(dec.res.kept.size),
        "wall_s": round(time.perf_counter() - w0, 2),
        "cpu_s": round(time.process_time() - c0, 2),
        "maxrss_mb": round(usage.ru_maxrss / 1024, 1),
        "dropped": dropped,
        "candidates": dec.res.n_candidates,
        "confirmed": dec.res.n_confirmed,
        "crowded_buckets": dec.res.crowded.buckets,
        "crowded_members": dec.res.crowded.members,
        "crowded_comparisons": dec.res.crowded.comparisons,
        "digest": digest.hexdigest()[:16],
    }


def run_child(root: Path, spill_above: int, baseline: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", str(root), "--spill-above", str(spill_above)]
    if baseline:
        cmd.append("--baseline")
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--spill-sizes", type=int, nargs="*", default=[1_000_000])
    ap.add_argument("--work", type=Path, default=Path("/tmp/webtext-dedup-scale"))
    ap.add_argument("--child", type=Path)
    ap.add_argument("--spill-above", type=int, default=10**12)
    ap.add_argument("--baseline", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.spill_above, args.baseline)), flush=True)
        return
    cfg = DedupConfig()
    base = run_child(args.work, 0, baseline=True)["maxrss_mb"]
    print(json.dumps({"bench": "dedup_scale_baseline", "maxrss_mb": base}), flush=True)
    for n in sorted(set(args.sizes) | set(args.spill_sizes)):
        root = args.work / f"n{n}"
        c0, w0 = time.process_time(), time.perf_counter()
        parts = generate(root, n, cfg.num_perm)
        gen = {"generate_wall_s": round(time.perf_counter() - w0, 1)}
        gen["generate_cpu_s"] = round(time.process_time() - c0, 1)
        modes = (["memory"] if n in args.sizes else []) + (
            ["spill"] if n in args.spill_sizes else []
        )
        for mode in modes:
            r = run_child(root, 10**12 if mode == "memory" else 0)
            r.update(
                bench="dedup_scale",
                mode=mode,
                parts=parts,
                gb_per_million=round((r["maxrss_mb"] - base) / 1024 / (n / 1e6), 3),
                cpu_us_per_doc=round(r["cpu_s"] / n * 1e6, 2),
                wall_us_per_doc=round(r["wall_s"] / n * 1e6, 2),
                goal_gb_per_million=1.5,
                **gen,
            )
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
