"""Near-dedup quality on the labelled set the tests generate from the Scrapinghub gold article
bodies: recall of pairs with true 5-gram Jaccard >= 0.8 and merges of pairs below 0.5, for the
default config and for the literal "estimate >= threshold" confirmation (confirm_z = 0).

Prints JSON lines. Usage: python benchmarks/dedup_quality.py [--copies 3] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from pipeline import dedup
from pipeline.core.config import DedupConfig
from tests.test_dedup_helpers import evaluate, gold_bodies, labelled_set, true_jaccard


def run_once(texts: dict[str, str], cfg: DedupConfig) -> dict[str, str]:
    return dedup.cluster(texts, cfg=cfg)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    bodies = gold_bodies(args.data)
    for seed in args.seeds:
        texts, pairs = labelled_set(bodies, copies=args.copies, seed=seed)
        for label, cfg in [
            ("default", DedupConfig()),
            ("confirm_z=0", DedupConfig(confirm_z=0.0)),
            ("bands16x8", DedupConfig(bands=16, rows=8)),
        ]:
            t = time.perf_counter()
            mapping = run_once(texts, cfg)
            elapsed = time.perf_counter() - t
            m = evaluate(texts, pairs, mapping)
            m["min_true_jaccard_dropped_vs_kept"] = min(
                (true_jaccard(texts[a], texts[b]) for a, b in mapping.items()), default=1.0
            )
            kinds: dict[str, list[bool]] = {}
            for a, b, j, kind in pairs:
                if j >= 0.8:
                    kinds.setdefault(kind, []).append(mapping.get(a, a) == mapping.get(b, b))
            m["recall_by_edit"] = {k: round(sum(v) / len(v), 4) for k, v in sorted(kinds.items())}
            print(
                json.dumps(
                    {
                        "bench": "dedup_quality",
                        "seed": seed,
                        "config": label,
                        "docs": len(texts),
                        "bands": cfg.bands,
                        "rows": cfg.rows,
                        "confirm_z": cfg.confirm_z,
                        "seconds": round(elapsed, 3),
                        **m,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
