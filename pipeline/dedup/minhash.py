"""Vectorized MinHash signatures of normalized texts (pipeline.core.ngrams).

The signatures equal `datasketch.MinHash(num_perm, seed, hashfunc=shingle_hash)` fed with the
word n-gram tuples of `shingles(normalize(text))` (datasketch >= 2.0, scheme "affine32"), but
no Python code runs per shingle or per word: a whole batch of documents is one UTF-8 byte
buffer, word hashes come from prefix sums of a polynomial byte hash, shingle hashes from
shifted sums of word hashes, and the permutations are one uint32 matrix reduced per document.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.core.ngrams import (
    MASK64,
    SHINGLE_MULT,
    PowerTables,
    char_batches,
    fmix64,
    fmix64_array,
    word_hash,
    word_hashes,
)

# --- scalar reference hashes (what datasketch gets as `hashfunc`) ---------------------------


def shingle_hash(shingle: Sequence[str]) -> int:
    """32-bit hash of a tuple of words; datasketch's `hashfunc` for the same signatures."""
    acc = 0
    for w in shingle:
        acc = (acc * SHINGLE_MULT + word_hash(w)) & MASK64
    return fmix64(acc) >> 32


def shingles(normalized: str, ngram: int) -> list[tuple[str, ...]]:
    """Word n-grams; a text shorter than n words is one shingle of all its words."""
    words = normalized.split()
    if not words:
        return []
    if len(words) < ngram:
        return [tuple(words)]
    return [tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]


# --- vectorized ---------------------------------------------------------------------------


def _vfmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 parameters: the same RandomState draws in the same order."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def signatures(
    normalized: Sequence[str],
    num_perm: int = 128,
    seed: int = 1,
    ngram: int = 5,
    batch_chars: int = 1 << 20,
) -> np.ndarray:
    """MinHash signatures (len(normalized) x num_perm, uint32) of normalized texts."""
    a, b = permutations(num_perm, seed)
    out = np.empty((len(normalized), num_perm), dtype=np.uint32)
    tables = PowerTables()
    for start, stop in char_batches(normalized, batch_chars):
        out[start:stop] = _batch_signatures(normalized[start:stop], a, b, ngram, tables).T
    return out


def _batch_signatures(
    texts: Sequence[str], a: np.ndarray, b: np.ndarray, ngram: int, tables: PowerTables
) -> np.ndarray:
    """Signatures of a batch, transposed: (num_perm x docs)."""
    n_docs = len(texts)
    sig = np.full((a.size, n_docs), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    n_words = np.array([t.count(" ") + 1 if t else 0 for t in texts], dtype=np.int64)
    if not n_words.any():
        return sig
    wh = word_hashes(" ".join(t for t in texts if t).encode("utf-8"), tables)
    word_off = np.concatenate(([0], np.cumsum(n_words)[:-1]))
    total = wh.size
    # Shingle i covers words i..i+n-1: Horner's rule over n shifted word-hash vectors.
    n_full = max(total - ngram + 1, 0)
    acc = np.zeros(n_full, dtype=np.uint64)
    for k in range(ngram):
        acc = acc * np.uint64(SHINGLE_MULT) + wh[k : k + n_full]
    # Keep the shingles that start and end inside one document.
    doc_of_word = np.repeat(np.arange(n_docs), n_words)[:n_full]
    last_start = (word_off + n_words - ngram)[doc_of_word]
    keep = np.arange(n_full) <= last_start
    sh = acc[keep]
    n_sh = np.where(n_words >= ngram, n_words - ngram + 1, 0)
    short = np.flatnonzero((n_words > 0) & (n_words < ngram))
    if short.size:
        # Rare: documents shorter than n words get one shingle of all their words, appended
        # after the others and min-reduced separately below.
        extra = np.zeros(short.size, dtype=np.uint64)
        for k in range(ngram - 1):
            has = n_words[short] > k
            idx = np.where(has, word_off[short] + k, 0)
            extra = np.where(has, extra * np.uint64(SHINGLE_MULT) + wh[idx], extra)
        sh = np.concatenate((sh, extra))
    mixed = _vfmix32((fmix64_array(sh) >> np.uint64(32)).astype(np.uint32))
    docs = np.flatnonzero(n_sh > 0)
    offsets = np.concatenate(([0], np.cumsum(n_sh[docs])[:-1]))
    n_long = int(n_sh.sum())
    buf = np.empty(mixed.size, dtype=np.uint32)
    # One permutation at a time over all shingles of the batch: contiguous, SIMD-friendly
    # passes, far faster than a (shingles x perms) matrix.
    for p in range(a.size):
        np.multiply(mixed, a[p], out=buf)
        np.add(buf, b[p], out=buf)
        if docs.size:
            sig[p, docs] = np.minimum.reduceat(buf[:n_long], offsets)
        if short.size:
            sig[p, short] = buf[n_long:]
    return sig


def jaccard_estimate(s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Fraction of equal MinHash values, row by row (or for two single signatures)."""
    return np.mean(s1 == s2, axis=-1)
