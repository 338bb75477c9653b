"""The audit: evaluation-set n-grams found in a corpus, GPT-2 style, and its driver."""

from __future__ import annotations

import heapq
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.config import CorpusConfig, TokenizerConfig
from pipeline.core.errors import ConfigError, PartError
from pipeline.core.io import atomic_write_json
from pipeline.core.ngrams import PowerTables, char_batches
from pipeline.overlap.corpus import build_parts, corpus_files, iter_batches
from pipeline.overlap.evalsets import EvalIndex
from pipeline.overlap.text import line_ngram_hashes, n_words, normalized_lines

log = logging.getLogger(__name__)

STAGE = "overlap"
# Bump by hand when a change alters what the audit writes.
VERSION = 1
OUTPUT = "overlap.json"
BATCH_CHARS = 1 << 20  # characters of normalized lines per vectorized pass


@dataclass(frozen=True)
class _Entry:
    """A top-documents candidate; `a < b` when a ranks below b (fewer n-grams, then the
    larger id), so a min-heap's root is the candidate to drop."""

    count: int
    id: str
    url: str | None

    def __lt__(self, other: _Entry) -> bool:
        return self.count < other.count or (self.count == other.count and self.id > other.id)


class _Top:
    """The `size` documents with the most n-grams, ties broken by the smaller id."""

    def __init__(self, size: int):
        self.size = size
        self.heap: list[_Entry] = []

    def offer(self, entry: _Entry) -> None:
        if self.size <= 0:
            return
        if len(self.heap) < self.size:
            heapq.heappush(self.heap, entry)
        elif self.heap[0] < entry:
            heapq.heapreplace(self.heap, entry)

    def ranked(self) -> list[dict[str, Any]]:
        best = sorted(self.heap, key=lambda e: (-e.count, e.id))
        return [{"id": e.id, "url": e.url, "ngrams": e.count} for e in best]


def audit(
    corpus: Path | str | Sequence[Path | str],
    eval_sets: Mapping[str, str | Path],
    ngram: int = 8,
    top: int = 10,
    tokenizer: TokenizerConfig | None = None,
) -> dict[str, Any]:
    """GPT-2's train/test overlap audit of evaluation sets against a corpus.

    `corpus`: a build folder (its dedup parts), a shards folder, or Parquet/JSONL files or
    folders (pipeline.overlap.corpus). Per set: its distinct n-grams (`ngrams`), how many occur
    anywhere in the corpus (`ngrams_found`, `percent`), its examples and how many have an
    n-gram in the corpus (`examples_with_overlap`, with their line numbers in the file as
    `overlapping_lines`), and the `top` documents holding the most distinct n-grams of the set
    (ties: smaller id first). Deterministic: no times, no absolute paths.

    Memory is bounded by the evaluation sets (their hashes, a found flag per distinct n-gram,
    per-example index ranges) plus one record batch of the corpus.
    """
    if not eval_sets:
        raise ConfigError("overlap: no evaluation sets")
    if ngram < 1:
        raise ConfigError("overlap: ngram must be >= 1")
    index = EvalIndex.build(eval_sets, ngram)
    form, files = corpus_files(corpus)
    log.info(
        "overlap: %d distinct %d-grams in %d sets; corpus: %d %s files",
        index.size,
        ngram,
        len(index.sets),
        len(files),
        form,
    )
    found = np.zeros(index.size, dtype=bool)
    tops = [_Top(top) for _ in index.sets]
    tables = PowerTables()
    docs = words = 0
    tokens: int | None = 0
    for batch in iter_batches(files, tokenizer):
        docs += len(batch.texts)
        if tokens is not None and batch.tokens is not None:
            tokens += batch.tokens
        else:
            tokens = None
        lines: list[str] = []
        line_doc: list[int] = []
        for j, text in enumerate(batch.texts):
            norm = normalized_lines(text)
            lines += norm
            line_doc += [j] * len(norm)
        words += n_words(lines)
        hit_docs: list[np.ndarray] = []
        hit_pos: list[np.ndarray] = []
        doc_of_line = np.asarray(line_doc, dtype=np.int64)
        for start, stop in char_batches(lines, BATCH_CHARS):
            hashes, counts = line_ngram_hashes(lines[start:stop], ngram, tables)
            pos, hit = index.lookup(hashes)
            if hit.any():
                hit_pos.append(pos[hit])
                hit_docs.append(np.repeat(doc_of_line[start:stop], counts)[hit])
        if hit_pos:
            _count_documents(
                np.concatenate(hit_docs), np.concatenate(hit_pos), batch, index, found, tops
            )
    result_sets: dict[str, Any] = {}
    for k, s in enumerate(index.sets):
        set_found = found[index.where[k]]
        hits = set_found[s.pos]
        cum = np.concatenate(([0], np.cumsum(hits, dtype=np.int64)))
        with_overlap = (cum[s.offsets[1:]] - cum[s.offsets[:-1]]) > 0
        n, m = int(s.hashes.size), int(set_found.sum())
        result_sets[s.name] = {
            "ngrams": n,
            "ngrams_found": m,
            "percent": round(100.0 * m / n, 2) if n else 0.0,
            "examples": s.examples,
            "examples_with_overlap": int(with_overlap.sum()),
            "overlapping_lines": s.lines[with_overlap].tolist(),
            "top_documents": tops[k].ranked(),
            "file": s.path.name,
            "sha256": s.sha256,
        }
    return {
        "version": VERSION,
        "ngram": ngram,
        "normalization": "gpt2: lower case, alphanumeric runs, single spaces; lines kept apart",
        "eval_sets": result_sets,
        "corpus": {
            "form": form,
            "files": len(files),
            "documents": docs,
            "words": words,
            "tokens": tokens,
            "tokens_or_words": tokens if tokens is not None else words,
            "unit": "tokens" if tokens is not None else "words",
        },
    }


def _count_documents(
    doc: np.ndarray,
    pos: np.ndarray,
    batch: Any,
    index: EvalIndex,
    found: np.ndarray,
    tops: list[_Top],
) -> None:
    """Mark found n-grams; offer each document of the batch its distinct n-grams per set."""
    found[pos] = True
    pairs = np.unique(doc * np.int64(max(index.size, 1)) + pos)
    pair_doc, pair_pos = np.divmod(pairs, np.int64(max(index.size, 1)))
    for k, top in enumerate(tops):
        in_set = index.member[k, pair_pos]
        if not in_set.any():
            continue
        per_doc = np.bincount(pair_doc[in_set], minlength=len(batch.texts))
        for j in np.flatnonzero(per_doc).tolist():
            top.offer(_Entry(int(per_doc[j]), batch.ids[j], batch.urls[j]))


def markdown(result: Mapping[str, Any]) -> str:
    """The audit as a markdown table (and the corpus size and top documents below it)."""
    n = result.get("ngram", 8)
    lines = [
        f"| set | {n}-grams | found | percent | examples | with overlap |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    sets = result.get("eval_sets") or {}
    for name, e in sorted(sets.items()):
        lines.append(
            f"| {name} | {e['ngrams']:,} | {e['ngrams_found']:,} | {e['percent']:.2f} "
            f"| {e['examples']:,} | {e['examples_with_overlap']:,} |"
        )
    corpus = result.get("corpus") or {}
    if corpus:
        size = f"{corpus.get('tokens_or_words', 0):,} {corpus.get('unit', 'words')}"
        lines += ["", f"Corpus: {corpus.get('documents', 0):,} documents, {size}."]
    for name, e in sorted(sets.items()):
        if e.get("top_documents"):
            lines += ["", f"Top documents, {name}:"]
            lines += [
                f"- {t['id']} {t.get('url') or ''} ({t['ngrams']:,} {n}-grams)".replace("  ", " ")
                for t in e["top_documents"]
            ]
    return "\n".join(lines)


def run(root: Path, cfg: CorpusConfig) -> dict[str, Any]:
    """Audit a build folder's dedup parts (the documents of its shards) against
    `overlap.eval_sets`; write ROOT/overlap.json atomically (the report reads it) and return
    the figures. No done marker: the audit always reflects the folder as it is, and the same
    build gives the same bytes."""
    root = Path(root)
    if not cfg.overlap.eval_sets:
        raise ConfigError("overlap.eval_sets is empty: nothing to audit")
    # A failed audit leaves no overlap.json rather than an earlier build's figures.
    (root / OUTPUT).unlink(missing_ok=True)
    parts = build_parts(root)
    if not parts:
        raise PartError(STAGE, "all", f"no dedup parts in {root / 'dedup'}")
    result = audit(
        parts,
        {k: Path(v) for k, v in cfg.overlap.eval_sets.items()},
        ngram=cfg.overlap.ngram,
        top=cfg.overlap.top_documents,
        tokenizer=cfg.tokenizer,
    )
    result["corpus"]["form"] = "build"
    atomic_write_json(root / OUTPUT, result)
    log.info("overlap: %s", root / OUTPUT)
    return result
