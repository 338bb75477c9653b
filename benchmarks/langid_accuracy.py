"""Language ID accuracy of pipeline.extract.langid on real sentences (67 languages x 100, Leipzig
corpora via lingua-py's test data), per language, plus English precision/recall at the filter's
default threshold for single sentences and for paragraphs of five sentences.

    python benchmarks/langid_accuracy.py [--model path/to/lid.176.bin]

Prints JSON lines: one per language, then the English figures, then a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("WEBTEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
DATA = SHARED / "langid" / "sentences-open.tsv"
# The data set labels Norwegian Bokmal `nb`; lid.176 calls it `no`.
ALIASES = {"nb": "no"}


def load_sentences(path: Path = DATA) -> list[tuple[str, str]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        next(f)  # header
        for line in f:
            lang, _, text = line.rstrip("\n").partition("\t")
            if text:
                rows.append((ALIASES.get(lang, lang), text))
    return rows


def paragraphs(rows: list[tuple[str, str]], size: int = 5) -> list[tuple[str, str]]:
    """Consecutive sentences of one language joined in groups of `size`."""
    by_lang: dict[str, list[str]] = defaultdict(list)
    for lang, text in rows:
        by_lang[lang].append(text)
    out = []
    for lang in sorted(by_lang):
        s = by_lang[lang]
        out += [(lang, " ".join(s[i : i + size])) for i in range(0, len(s) - size + 1, size)]
    return out


def predict(rows: list[tuple[str, str]], model_path: str | None = None) -> list[tuple[str, float]]:
    from pipeline.extract.langid import identify_with, load_model

    model = load_model(model_path)
    return [identify_with(model, text) for _, text in rows]


def per_language(rows: list[tuple[str, str]], preds: list[tuple[str, float]]) -> dict[str, float]:
    hits: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for (lang, _), (pred, _) in zip(rows, preds, strict=True):
        total[lang] += 1
        hits[lang] += pred == lang
    return {lang: hits[lang] / total[lang] for lang in sorted(total)}


def precision_recall(
    rows: list[tuple[str, str]],
    preds: list[tuple[str, float]],
    lang: str = "en",
    threshold: float = 0.65,
) -> dict[str, Any]:
    """Precision/recall of the filter's decision `pred == lang and score >= threshold`."""
    tp = fp = fn = 0
    for (true, _), (pred, score) in zip(rows, preds, strict=True):
        kept = pred == lang and score >= threshold
        tp += kept and true == lang
        fp += kept and true != lang
        fn += (not kept) and true == lang
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--threshold", type=float, default=0.65)
    args = ap.parse_args()
    rows = load_sentences()
    t0 = time.perf_counter()
    preds = predict(rows, args.model)
    elapsed = time.perf_counter() - t0
    acc = per_language(rows, preds)
    for lang, a in acc.items():
        print(json.dumps({"bench": "langid_accuracy", "lang": lang, "accuracy": round(a, 2)}))
    paras = paragraphs(rows)
    ppreds = predict(paras, args.model)
    for unit, r, p in (("sentence", rows, preds), ("paragraph5", paras, ppreds)):
        pr = precision_recall(r, p, "en", args.threshold)
        print(
            json.dumps(
                {
                    "bench": "langid_en",
                    "unit": unit,
                    "threshold": args.threshold,
                    "precision": round(pr["precision"], 4),
                    "recall": round(pr["recall"], 4),
                    "tp": pr["tp"],
                    "fp": pr["fp"],
                    "fn": pr["fn"],
                    "n": len(r),
                }
            )
        )
    para_acc = per_language(paras, ppreds)
    print(
        json.dumps(
            {
                "bench": "langid_summary",
                "languages": len(acc),
                "sentences": len(rows),
                "mean_accuracy": round(sum(acc.values()) / len(acc), 4),
                "paragraph5_mean_accuracy": round(sum(para_acc.values()) / len(para_acc), 4),
                "sentences_per_s": round(len(rows) / elapsed),
            }
        )
    )


if __name__ == "__main__":
    main()
