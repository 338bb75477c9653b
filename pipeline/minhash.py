"""Text normalization, exact-dedup hashes and vectorized MinHash signatures.

The signatures equal `datasketch.MinHash(num_perm, seed, hashfunc=shingle_hash)` fed with the
word n-gram tuples of `shingles(normalize(text))` (datasketch >= 2.0, scheme "affine32"), but
no Python code runs per shingle or per word: a whole batch of documents is one UTF-8 byte
buffer, word hashes come from prefix sums of a polynomial byte hash, shingle hashes from
shifted sums of word hashes, and the permutations are one uint32 matrix reduced per document.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence

import numpy as np

MASK64 = (1 << 64) - 1
# Odd multipliers: odd numbers are invertible mod 2^64, which the prefix-sum trick needs.
BYTE_MULT = 0x100000001B3  # FNV-1 64-bit prime
LEN_MULT = 0xC2B2AE3D27D4EB4F
SHINGLE_MULT = 0x9E3779B97F4A7C15
BYTE_MULT_INV = pow(BYTE_MULT, -1, 1 << 64)

# A character survives normalization iff it is alphanumeric or whitespace (str semantics):
# punctuation and symbols go, so "Don't!" and "dont" hash alike. Lookup tables of constants,
# built once: which BMP code points go, and which ASCII bytes go.
_DROP_BMP = np.array([not (chr(c).isalnum() or chr(c).isspace()) for c in range(1 << 16)])
_DROP_ASCII = bytes(c for c in range(128) if _DROP_BMP[c])
# str.split() treats \x1c-\x1f as whitespace, bytes.split() does not: map them to spaces.
_ASCII_TABLE = bytes(32 if 0x1C <= c <= 0x1F else c for c in range(256))


def normalize_reference(text: str) -> str:
    """The definition, one character at a time; `normalize` is the fast equivalent."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(c for c in t if c.isalnum() or c.isspace())
    return " ".join(t.split())


def normalize(text: str) -> str:
    """NFKC, casefolded, punctuation and symbols removed, whitespace collapsed to one space."""
    if text.isascii():
        # ASCII is NFKC-invariant and casefold() == lower() on it.
        data = text.lower().encode("ascii").translate(_ASCII_TABLE, _DROP_ASCII)
        return b" ".join(data.split()).decode("ascii")
    t = unicodedata.normalize("NFKC", text).casefold()
    cps = np.frombuffer(t.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    big = cps >= (1 << 16)
    drop = _DROP_BMP[np.where(big, 0, cps)]
    if big.any():
        for i in np.flatnonzero(big):
            c = chr(int(cps[i]))
            drop[i] = not (c.isalnum() or c.isspace())
    t = cps[~drop].tobytes().decode("utf-32-le", "surrogatepass")
    return " ".join(t.split())


def text_hash(normalized: str) -> str:
    """Exact-dedup key of a normalized text: 16 bytes of blake2b as hex."""
    return hashlib.blake2b(normalized.encode("utf-8"), digest_size=16).hexdigest()


# --- scalar reference hashes (what datasketch gets as `hashfunc`) ---------------------------


def _fmix64(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK64
    return h ^ (h >> 33)


def word_hash(word: str) -> int:
    """64-bit hash of one word: polynomial over its UTF-8 bytes, length mixed in, fmix64."""
    data = word.encode("utf-8")
    acc = 0
    power = 1
    for byte in data:
        acc = (acc + byte * power) & MASK64
        power = (power * BYTE_MULT) & MASK64
    return _fmix64(acc ^ ((len(data) * LEN_MULT) & MASK64))


def shingle_hash(shingle: Sequence[str]) -> int:
    """32-bit hash of a tuple of words; datasketch's `hashfunc` for the same signatures."""
    acc = 0
    for w in shingle:
        acc = (acc * SHINGLE_MULT + word_hash(w)) & MASK64
    return _fmix64(acc) >> 32


def shingles(normalized: str, ngram: int) -> list[tuple[str, ...]]:
    """Word n-grams; a text shorter than n words is one shingle of all its words."""
    words = normalized.split()
    if not words:
        return []
    if len(words) < ngram:
        return [tuple(words)]
    return [tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]


# --- vectorized ---------------------------------------------------------------------------


def _vfmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


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


class _PowerTables:
    """P^i and P^-i mod 2^64 for byte offsets in a batch, grown on demand and reused across
    the batches of one `signatures` call (cumprod is sequential, so it should run once)."""

    def __init__(self) -> None:
        self.fwd = np.ones(1, dtype=np.uint64)
        self.inv = np.ones(1, dtype=np.uint64)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.fwd.size < n:
            size = max(n, 2 * self.fwd.size)
            self.fwd = _powers(BYTE_MULT, size)
            self.inv = _powers(BYTE_MULT_INV, size)
        return self.fwd[:n], self.inv[:n]


def _powers(base: int, n: int) -> np.ndarray:
    out = np.full(n, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


def _word_hashes(joined: bytes, tables: _PowerTables) -> np.ndarray:
    """Hashes of the single-space-separated words of a non-empty buffer."""
    buf = np.frombuffer(joined, dtype=np.uint8)
    n = buf.size
    spaces = np.flatnonzero(buf == 32)
    starts = np.concatenate(([0], spaces + 1))
    ends = np.concatenate((spaces, [n]))
    fwd, inv = tables.get(n + 1)
    # prefix[i] = sum_{j<i} byte_j * P^j, so a word's polynomial is a difference of prefixes
    # scaled back by P^-start: all in wrapping uint64, where the odd P is invertible.
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(buf * fwd[:n], dtype=np.uint64, out=prefix[1:])
    poly = (prefix[ends] - prefix[starts]) * inv[starts]
    lengths = (ends - starts).astype(np.uint64)
    return _vfmix64(poly ^ (lengths * np.uint64(LEN_MULT)))


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
    tables = _PowerTables()
    start = 0
    while start < len(normalized):
        stop, size = start, 0
        while stop < len(normalized) and (stop == start or size < batch_chars):
            size += len(normalized[stop]) + 1
            stop += 1
        out[start:stop] = _batch_signatures(normalized[start:stop], a, b, ngram, tables).T
        start = stop
    return out


def _batch_signatures(
    texts: Sequence[str], a: np.ndarray, b: np.ndarray, ngram: int, tables: _PowerTables
) -> np.ndarray:
    """Signatures of a batch, transposed: (num_perm x docs)."""
    n_docs = len(texts)
    sig = np.full((a.size, n_docs), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    n_words = np.array([t.count(" ") + 1 if t else 0 for t in texts], dtype=np.int64)
    if not n_words.any():
        return sig
    wh = _word_hashes(" ".join(t for t in texts if t).encode("utf-8"), tables)
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
    mixed = _vfmix32((_vfmix64(sh) >> np.uint64(32)).astype(np.uint32))
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
