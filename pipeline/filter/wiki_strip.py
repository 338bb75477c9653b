"""Paragraphs copied from Wikipedia, found and removed.

A paragraph is a line of the extracted text. Its word n-grams (normalized as the index was,
never crossing a line) are looked up in the index; a paragraph with at least `threshold` of
them found is removed and the document keeps the rest. A document's `overlap` is the share of
all its n-grams found, before stripping. Lines shorter than n words have no n-grams and stay.

Lookups are vectorized over a batch of documents: one normalization and hashing pass over all
their lines (`core.ngrams.line_ngram_hashes`), one membership query of the index
(`WikiIndex.contains`: a directory entry and a cache line per n-gram), and counts per line and
per document with bincount and reduceat.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.io import temp_path
from pipeline.core.ngrams import PowerTables, char_batches, line_ngram_hashes
from pipeline.filter.wiki_index import WikiIndex

BATCH_CHARS = 1 << 20


@dataclass
class Stripped:
    text: str  # the document without its copied paragraphs
    overlap: float  # share of the document's n-grams found in the index, before stripping
    removed: list[int] = field(default_factory=list)  # 0-based indexes of the removed lines

    @property
    def stripped(self) -> bool:
        return bool(self.removed)


def strip_paragraphs(
    texts: Sequence[str],
    index: WikiIndex,
    n: int,
    threshold: float,
    tables: PowerTables | None = None,
) -> list[Stripped]:
    """Every text without the lines whose share of n-grams in the index is >= threshold.
    Callers that strip batch after batch pass one `tables`: its power tables are built once."""
    tables = tables or PowerTables()
    out: list[Stripped] = []
    for start, stop in char_batches(texts, BATCH_CHARS):
        out.extend(_strip_batch(texts[start:stop], index, n, threshold, tables))
    return out


def _strip_batch(
    texts: Sequence[str], index: WikiIndex, n: int, threshold: float, tables: PowerTables
) -> list[Stripped]:
    hashes, line, lines_per_text = line_ngram_hashes(texts, n, tables)
    n_lines = int(lines_per_text.sum())
    found = index.contains(hashes)
    counts = np.bincount(line, minlength=n_lines)
    hits = np.bincount(line[found], minlength=n_lines)
    remove = (counts > 0) & (hits >= threshold * counts)
    first = np.concatenate(([0], np.cumsum(lines_per_text)))
    doc_counts = np.add.reduceat(counts, first[:-1])
    doc_hits = np.add.reduceat(hits, first[:-1])
    doc_removed = np.add.reduceat(remove.astype(np.int64), first[:-1])
    out: list[Stripped] = []
    for d, text in enumerate(texts):
        total = int(doc_counts[d])
        overlap = float(doc_hits[d]) / total if total else 0.0
        if not doc_removed[d]:
            out.append(Stripped(text, overlap))
            continue
        removed = [int(i) for i in np.flatnonzero(remove[first[d] : first[d + 1]])]
        gone = set(removed)
        kept = [line for i, line in enumerate(text.split("\n")) if i not in gone]
        out.append(Stripped("\n".join(kept).strip(), overlap, removed))
    return out


def strip_jsonl(src: Path, dst: Path, index: WikiIndex, n: int, threshold: float) -> dict[str, int]:
    """`webtext wiki-strip`: lines {"id", "text"} -> {"id", "text", "wiki_overlap",
    "removed_paragraphs"} (0-based line indexes), a batch at a time, written atomically. A line
    that is not such an object is a ConfigError naming it."""
    counts = {"documents": 0, "stripped": 0, "paragraphs": 0}
    tables = PowerTables()
    tmp = temp_path(Path(dst))
    try:
        with open(src, encoding="utf-8") as fin, open(tmp, "w", encoding="utf-8") as fout:
            batch: list[tuple[Any, str]] = []

            def flush() -> None:
                for (doc_id, _), res in zip(
                    batch,
                    strip_paragraphs([t for _, t in batch], index, n, threshold, tables),
                    strict=True,
                ):
                    record = {
                        "id": doc_id,
                        "text": res.text,
                        "wiki_overlap": round(res.overlap, 6),
                        "removed_paragraphs": res.removed,
                    }
                    fout.write(json.dumps(record, ensure_ascii=False) + "\n")
                    counts["documents"] += 1
                    counts["stripped"] += bool(res.removed)
                    counts["paragraphs"] += len(res.removed)
                batch.clear()

            for lineno, line in enumerate(fin, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    text = obj["text"]
                    if not isinstance(text, str):
                        raise TypeError("text is not a string")
                except (ValueError, KeyError, TypeError) as err:
                    raise ConfigError(
                        f"{src}:{lineno}: not an object with a text field ({err})"
                    ) from None
                batch.append((obj.get("id"), text))
                if len(batch) >= 512:
                    flush()
            flush()
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return counts
