"""Decontamination as GPT-3 did it: documents sharing n-grams (13) with an evaluation example
are dropped (`eval_overlap`, detail: the set, the example's line and the shared count).

Evaluation files hold one example per line (pipeline.core.evalsets). Their
n-grams (pipeline.core.ngrams.normalize, never crossing a line) are kept as a sorted hash
array with the example each came from; memory depends on the evaluation sets only. A
document's n-grams are looked up in one sorted search; the example sharing the most with it
decides, and it is dropped when that count reaches `min_shared`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.evalsets import iter_examples
from pipeline.core.ngrams import PowerTables, batch_ngram_hashes, normalize, normalize_lines


@dataclass
class EvalIndex:
    hashes: np.ndarray  # sorted uint64 n-gram hashes (one entry per example that has it)
    example: np.ndarray  # int64: the global example number of each hash
    labels: list[str]  # "name:line number in its file" of each global example
    n: int

    @classmethod
    def build(cls, eval_sets: dict[str, str], n: int) -> EvalIndex:
        tables = PowerTables()
        hashes: list[np.ndarray] = []
        examples: list[np.ndarray] = []
        labels: list[str] = []
        for name in sorted(eval_sets):
            lines = list(iter_examples(Path(eval_sets[name])))
            h, counts = batch_ngram_hashes([normalize(x) for _, x in lines], n, tables)
            ids = np.repeat(np.arange(len(labels), len(labels) + len(lines)), counts)
            labels.extend(f"{name}:{lineno}" for lineno, _ in lines)
            # An n-gram repeated inside one example counts once for it.
            pairs = np.unique(np.stack([h, ids.astype(np.uint64)], axis=1), axis=0)
            hashes.append(pairs[:, 0])
            examples.append(pairs[:, 1].astype(np.int64))
        h = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
        e = np.concatenate(examples) if examples else np.empty(0, dtype=np.int64)
        order = np.lexsort((e, h))
        return cls(hashes=h[order], example=e[order], labels=labels, n=n)

    def worst(self, text: str, tables: PowerTables | None = None) -> tuple[str, int] | None:
        """(label, shared n-grams) of the example sharing the most with the text."""
        if not self.hashes.size:
            return None
        lines = normalize_lines(text)
        h, _ = batch_ngram_hashes(lines, self.n, tables or PowerTables())
        if not h.size:
            return None
        h = np.unique(h)
        lo = np.searchsorted(self.hashes, h, side="left")
        hi = np.searchsorted(self.hashes, h, side="right")
        hit = hi > lo
        if not hit.any():
            return None
        ex = np.concatenate([self.example[a:b] for a, b in zip(lo[hit], hi[hit], strict=True)])
        counts = np.bincount(ex)
        best = int(np.argmax(counts))  # the first (smallest) example among equals
        return self.labels[best], int(counts[best])

    def details(self, texts: Sequence[str], min_shared: int) -> list[str | None]:
        tables = PowerTables()
        out: list[str | None] = []
        for text in texts:
            w = self.worst(text, tables)
            out.append(
                f"{w[0]} ({w[1]} shared {self.n}-grams)" if w and w[1] >= min_shared else None
            )
        return out
