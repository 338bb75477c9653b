"""Extraction quality on the Scrapinghub article-extraction benchmark (181 real pages, human
gold text): shingle F1 and pages/s of each trafilatura option set tried.

Scoring as the benchmark's own evaluate.py: 4-word shingles of `\\w+` tokens (multisets,
case-sensitive); per page tp/fp/fn scaled to sum 1; precision and recall averaged over pages;
F1 of the averages.

    python benchmarks/extract_quality.py [--sets default,trafilatura_default,...] [--repeat 1]

Prints one JSON line per option set.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("WEBTEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
BENCH = SHARED / "extraction" / "scrapinghub"
_TOKEN = re.compile(r"\w+")


def shingles(text: str | None, n: int = 4) -> Counter[str]:
    tokens = _TOKEN.findall(text or "")
    # A text shorter than n words is one shingle of all its words, as in the benchmark.
    return Counter(
        " ".join(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n]
    )


def shingle_match(true: str | None, pred: str | None) -> tuple[float, float, float]:
    t, p = shingles(true), shingles(pred)
    tp = fp = fn = 0
    for key in t.keys() | p.keys():
        tc, pc = t.get(key, 0), p.get(key, 0)
        tp += min(tc, pc)
        fp += max(0, pc - tc)
        fn += max(0, tc - pc)
    s = tp + fp + fn
    return (tp / s, fp / s, fn / s) if s else (0.0, 0.0, 0.0)


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fp == 0 else tp / (tp + fp)


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fn == 0 else tp / (tp + fn)


def score(gold: dict[str, str], pred: dict[str, str | None]) -> dict[str, float]:
    matches = [shingle_match(gold[k], pred.get(k)) for k in sorted(gold)]
    p = statistics.mean(_precision(*m) for m in matches)
    r = statistics.mean(_recall(*m) for m in matches)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def load_pages(root: Path = BENCH) -> tuple[dict[str, str], dict[str, bytes], dict[str, str]]:
    """(gold text, raw html bytes, url) by page id."""
    gt = json.loads((root / "ground-truth.json").read_text())
    gold = {k: v["articleBody"] for k, v in gt.items()}
    urls = {k: v.get("url") for k, v in gt.items()}
    html = {k: gzip.decompress((root / "html" / f"{k}.html.gz").read_bytes()) for k in gt}
    return gold, html, urls


def _our(**extract_fields: Any) -> Callable[[bytes, str | None], str | None]:
    from pipeline.core.config import ExtractConfig
    from pipeline.extract import extract_document

    cfg = ExtractConfig(**extract_fields)

    def run(raw: bytes, url: str | None) -> str | None:
        return extract_document(raw, url, cfg)[0]

    return run


def _trafilatura_default() -> Callable[[bytes, str | None], str | None]:
    import trafilatura

    def run(raw: bytes, url: str | None) -> str | None:
        return trafilatura.extract(raw, url=url)

    return run


def option_sets() -> dict[str, Callable[[], Callable[[bytes, str | None], str | None]]]:
    return {
        # trafilatura.extract() exactly as shipped (comments on, its own decoding)
        "trafilatura_default": _trafilatura_default,
        # the pipeline's default ExtractConfig: fast + recall, headline stripped
        "default": lambda: _our(),
        "default_no_metadata": lambda: _our(with_metadata=False, strip_title=False),
        "fast_recall_keep_title": lambda: _our(strip_title=False),
        "fast_recall_comments": lambda: _our(include_comments=True),
        "fast_recall_no_tables": lambda: _our(include_tables=False),
        "fast_balanced": lambda: _our(favor_recall=False),
        "fast_precision": lambda: _our(favor_recall=False, favor_precision=True),
        "balanced": lambda: _our(fast=False, favor_recall=False, strip_title=False),
        "balanced_strip_title": lambda: _our(fast=False, favor_recall=False),
        "balanced_comments": lambda: _our(fast=False, favor_recall=False, include_comments=True),
        "recall": lambda: _our(fast=False),
        "precision": lambda: _our(fast=False, favor_recall=False, favor_precision=True),
        "precision_keep_title": lambda: _our(
            fast=False, favor_recall=False, favor_precision=True, strip_title=False
        ),
        "precision_no_tables": lambda: _our(
            fast=False, favor_recall=False, favor_precision=True, include_tables=False
        ),
    }


def run_set(
    name: str, pages: tuple[dict[str, str], dict[str, bytes], dict[str, str]], repeat: int = 1
) -> dict[str, Any]:
    gold, html, urls = pages
    fn = option_sets()[name]()
    best = float("inf")
    pred: dict[str, str | None] = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        pred = {k: fn(html[k], urls[k]) for k in sorted(gold)}
        best = min(best, time.perf_counter() - t0)
    res = score(gold, pred)
    return {
        "bench": "extract_quality",
        "set": name,
        "pages": len(gold),
        "f1": round(res["f1"], 4),
        "precision": round(res["precision"], 4),
        "recall": round(res["recall"], 4),
        "pages_per_s": round(len(gold) / best, 1),
        "empty": sum(1 for v in pred.values() if not v),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default=",".join(option_sets()))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    import logging

    logging.disable(logging.WARNING)
    pages = load_pages()
    for name in args.sets.split(","):
        print(json.dumps(run_set(name, pages, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
