"""Evaluation sets: their examples, and one index of their distinct n-gram hashes.

A file holds one example per line: `.jsonl` files one JSON object per line with a string
`text` field (LAMBADA's OpenAI release), any other file plain UTF-8 text (PTB, CBT, 1BW).
An example is a line with some non-whitespace text (for .jsonl: an object whose `text` has
some); blank lines are not examples. A .jsonl example may hold several lines of text: its
n-grams, like every n-gram here, stay within one line (pipeline.overlap.text).

Exact hashes instead of GPT-2's Bloom filter: the index is the sorted array of the distinct
64-bit n-gram hashes of all sets. A corpus n-gram that is in no set is wrongly counted as found
only if its hash equals one of the U indexed hashes: probability U / 2^64 per lookup (for text
not built to collide), 3.5e-14 for the U = 642,747 distinct 8-grams of PTB, LAMBADA, CBT and
1BW together, so about 3e-4 expected false hits over a whole WebText-sized corpus (8 billion
n-grams); two distinct eval n-grams sharing a hash (which would merge them): about
U^2 / 2^65 = 1e-8. GPT-2's Bloom filters were sized for a 1e-8 false-positive rate per
lookup, 3e5 times more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.evalsets import check_eval_sets, iter_examples
from pipeline.core.ngrams import PowerTables, char_batches, sorted_lookup, sorted_unique
from pipeline.overlap.text import line_ngram_hashes, normalized_lines

BATCH_CHARS = 1 << 20


@dataclass
class EvalSet:
    """One evaluation set's n-grams: `hashes` are its distinct n-gram hashes (sorted);
    example i's n-grams (with repeats) are hashes[pos[offsets[i]:offsets[i + 1]]]."""

    name: str
    path: Path
    sha256: str
    lines: np.ndarray  # int64, the line number of each example in the file
    offsets: np.ndarray  # int64, len(examples) + 1
    pos: np.ndarray  # int64 positions into `hashes`
    hashes: np.ndarray  # uint64, sorted, distinct

    @property
    def examples(self) -> int:
        return int(self.lines.size)


def load_eval_set(name: str, path: Path, n: int, tables: PowerTables | None = None) -> EvalSet:
    tables = tables or PowerTables()
    linenos: list[int] = []
    lines: list[str] = []
    line_example: list[int] = []
    for i, (lineno, text) in enumerate(iter_examples(path)):
        linenos.append(lineno)
        norm = normalized_lines(text)
        lines.extend(norm)
        line_example.extend([i] * len(norm))
    parts: list[np.ndarray] = []
    counts = np.zeros(len(lines), dtype=np.int64)
    for start, stop in char_batches(lines, BATCH_CHARS):
        hashes, c = line_ngram_hashes(lines[start:stop], n, tables)
        parts.append(hashes)
        counts[start:stop] = c
    all_hashes = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    per_example = np.bincount(
        np.asarray(line_example, dtype=np.int64), weights=counts, minlength=len(linenos)
    ).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(per_example))).astype(np.int64)
    distinct, pos = np.unique(all_hashes, return_inverse=True)
    return EvalSet(
        name=name,
        path=Path(path),
        sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        lines=np.asarray(linenos, dtype=np.int64),
        offsets=offsets,
        pos=pos.astype(np.int64).ravel(),
        hashes=distinct.astype(np.uint64),
    )


class EvalIndex:
    """The distinct n-gram hashes of every set, sorted (`union`), and which set has which."""

    def __init__(self, sets: list[EvalSet]):
        self.sets = sets
        self.union = sorted_unique(
            np.concatenate([s.hashes for s in sets] or [np.empty(0, np.uint64)])
        )
        # where each set's distinct hashes sit in the union, and the membership matrix
        self.where = [np.searchsorted(self.union, s.hashes) for s in sets]
        self.member = np.zeros((len(sets), self.union.size), dtype=bool)
        for k, w in enumerate(self.where):
            self.member[k, w] = True

    @classmethod
    def build(cls, eval_sets: Mapping[str, str | Path], n: int) -> EvalIndex:
        check_eval_sets(eval_sets)
        tables = PowerTables()
        return cls([load_eval_set(k, Path(v), n, tables) for k, v in sorted(eval_sets.items())])

    @property
    def size(self) -> int:
        return int(self.union.size)

    @property
    def nbytes(self) -> int:
        arrays = [self.union, self.member, *self.where]
        for s in self.sets:
            arrays += [s.lines, s.offsets, s.pos, s.hashes]
        return int(sum(a.nbytes for a in arrays))

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in the union, found) of query hashes: found[i] iff hashes[i] is indexed,
        and then union[positions[i]] == hashes[i]."""
        return sorted_lookup(self.union, hashes)
