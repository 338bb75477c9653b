"""Text normalization and word n-gram hashing, shared by dedup (MinHash shingles, exact
keys), the Wikipedia index of the filter, and any overlap audit: one definition of a word and
of its hash, so an n-gram hashed in one stage is found by another.

Hashes are computed without Python code per word: a batch of normalized texts is one UTF-8
byte buffer, word hashes come from prefix sums of a polynomial byte hash, and n-gram hashes
from Horner's rule over shifted word-hash vectors.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator, Sequence

import numpy as np

MASK64 = (1 << 64) - 1
# Odd multipliers: odd numbers are invertible mod 2^64, which the prefix-sum trick needs.
BYTE_MULT = 0x100000001B3  # FNV-1 64-bit prime
LEN_MULT = 0xC2B2AE3D27D4EB4F
SHINGLE_MULT = 0x9E3779B97F4A7C15
BYTE_MULT_INV = pow(BYTE_MULT, -1, 1 << 64)

# A character survives normalization iff it is alphanumeric or whitespace (str semantics):
# punctuation and symbols go, so "Don't!" and "dont" hash alike. The ASCII bytes that go, and
# the ASCII whitespace other than the newline, which becomes a space.
_DROP_ASCII = bytes(c for c in range(128) if not (chr(c).isalnum() or chr(c).isspace()))
_ASCII_SPACE = bytes(32 if chr(c).isspace() and c != 10 else c for c in range(256))


def normalize_reference(text: str) -> str:
    """The definition, one character at a time; `normalize` is the fast equivalent."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(c for c in t if c.isalnum() or c.isspace())
    return " ".join(t.split())


# Normalization of one (NFKC) code point as a table over the BMP: its case fold, or 32 for
# whitespace other than the newline (which separates words, as str.split() does), or DROPPED
# for punctuation and symbols, or EXPANDS for the few whose fold is several characters
# (ß -> ss, ŉ -> ʼn, ...), which are spliced in from a side table.
DROPPED = np.uint32(0xFFFFFFFF)
EXPANDS = np.uint32(0xFFFFFFFE)


def _norm_char(c: str) -> int:
    if c.isspace():
        return 10 if c == "\n" else 32
    return ord(c) if c.isalnum() else int(DROPPED)


_NORM_BMP = np.empty(1 << 16, dtype=np.uint32)
_EXPANSIONS: dict[int, list[int]] = {}
for _c in range(1 << 16):
    _f = chr(_c).casefold()
    if len(_f) == 1:
        _NORM_BMP[_c] = _norm_char(_f)
    else:
        _NORM_BMP[_c] = EXPANDS
        _EXPANSIONS[_c] = [_norm_char(x) for x in _f]
del _c, _f


def _normalize_cps(cps: np.ndarray) -> np.ndarray:
    """Code points of NFKC text -> casefolded code points with punctuation and symbols
    dropped and whitespace other than newlines made a space."""
    if int(cps.max(initial=0)) < (1 << 16):
        out = _NORM_BMP[cps]
    else:
        big = cps >= (1 << 16)
        out = _NORM_BMP[np.where(big, 0, cps)]
        for i in np.flatnonzero(big):
            f = chr(int(cps[i])).casefold()  # astral letters fold to one astral letter
            out[i] = _norm_char(f) if len(f) == 1 else DROPPED
    expand = np.flatnonzero(out == EXPANDS)
    if expand.size:
        pieces = []
        prev = 0
        for pos in expand.tolist():
            pieces.append(out[prev:pos])
            pieces.append(np.array(_EXPANSIONS[int(cps[pos])], dtype=np.uint32))
            prev = pos + 1
        pieces.append(out[prev:])
        out = np.concatenate(pieces)
    return out[out != DROPPED]


def _nfkc(text: str) -> str:
    """NFKC, paying for the slow path only on the lines that need it: a newline is a stable
    boundary (a starter that never composes), so lines normalize independently."""
    if unicodedata.is_normalized("NFKC", text):
        return text
    return "\n".join(
        line if unicodedata.is_normalized("NFKC", line) else unicodedata.normalize("NFKC", line)
        for line in text.split("\n")
    )


def normalized_buffer(texts: Sequence[str]) -> bytes:
    """The UTF-8 bytes of `"\\n".join(texts)` normalized as `normalize_lines` does, except that
    words may be separated by several spaces: NFKC, casefold, punctuation and symbols dropped,
    whitespace other than newlines made a space. Line i of the result is line i of the joined
    texts. Code points are mapped by table lookups over the whole batch, not per line."""
    joined = "\n".join(_nfkc(text) for text in texts)
    if joined.isascii():
        return joined.lower().encode("ascii").translate(_ASCII_SPACE, _DROP_ASCII)
    kept = _normalize_cps(np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32))
    return kept.tobytes().decode("utf-32-le", "surrogatepass").encode("utf-8", "surrogatepass")


def line_ngram_hashes(
    texts: Sequence[str], n: int, tables: PowerTables
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, line, lines_per_text): the uint64 word n-gram hashes of every line of every
    text, as `batch_ngram_hashes` over `normalize_lines` gives them, the index of the line
    (counted over all texts) each n-gram belongs to, and how many lines each text has.
    Never crosses a line; one vectorized pass over the batch."""
    lines_per_text = np.array([t.count("\n") + 1 for t in texts], dtype=np.int64)
    empty = np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64), lines_per_text
    if not texts:
        return empty
    buf = np.frombuffer(normalized_buffer(texts), dtype=np.uint8)
    newline = buf == 10
    sep = newline | (buf == 32)
    edges = np.diff(np.concatenate(([True], sep, [True])).astype(np.int8))
    starts = np.flatnonzero(edges == -1)
    ends = np.flatnonzero(edges == 1)
    if starts.size < n:
        return empty
    line_of_word = np.searchsorted(np.flatnonzero(newline), starts)
    wh = _hash_words(buf, starts, ends, tables)
    n_full = wh.size - n + 1
    acc = wh[:n_full].copy()
    mult = np.uint64(SHINGLE_MULT)
    for k in range(1, n):
        np.multiply(acc, mult, out=acc)
        np.add(acc, wh[k : k + n_full], out=acc)
    keep = line_of_word[:n_full] == line_of_word[n - 1 :]
    return fmix64_array(acc[keep]), line_of_word[:n_full][keep].astype(np.int64), lines_per_text


def normalize(text: str) -> str:
    """NFKC, casefolded, punctuation and symbols removed, whitespace collapsed to one space."""
    return b" ".join(normalized_buffer([text]).split()).decode("utf-8")


def normalize_lines(text: str) -> list[str]:
    """`[normalize(line) for line in text.split("\n")]` in one pass over the text: a call per
    document instead of per paragraph (NFKC never joins or makes a newline)."""
    return [
        b" ".join(line.split()).decode("utf-8") for line in normalized_buffer([text]).split(b"\n")
    ]


def text_hash(normalized: str) -> str:
    """Exact-dedup key of a normalized text: 16 bytes of blake2b as hex."""
    return hashlib.blake2b(normalized.encode("utf-8"), digest_size=16).hexdigest()


# --- word hashes ---------------------------------------------------------------------------


def fmix64(h: int) -> int:
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
    return fmix64(acc ^ ((len(data) * LEN_MULT) & MASK64))


def fmix64_array(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


class PowerTables:
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


def word_hashes(joined: bytes, tables: PowerTables) -> np.ndarray:
    """Hashes of the single-space-separated words of a non-empty buffer."""
    buf = np.frombuffer(joined, dtype=np.uint8)
    spaces = np.flatnonzero(buf == 32)
    starts = np.concatenate(([0], spaces + 1))
    ends = np.concatenate((spaces, [buf.size]))
    return _hash_words(buf, starts, ends, tables)


def _hash_words(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, tables: PowerTables
) -> np.ndarray:
    """Hashes of the words buf[starts[i]:ends[i]]."""
    n = buf.size
    fwd, inv = tables.get(n + 1)
    # prefix[i] = sum_{j<i} byte_j * P^j, so a word's polynomial is a difference of prefixes
    # scaled back by P^-start: all in wrapping uint64, where the odd P is invertible.
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(buf * fwd[:n], dtype=np.uint64, out=prefix[1:])
    poly = (prefix[ends] - prefix[starts]) * inv[starts]
    lengths = (ends - starts).astype(np.uint64)
    return fmix64_array(poly ^ (lengths * np.uint64(LEN_MULT)))


def batch_ngram_hashes(
    normalized: Sequence[str], n: int, tables: PowerTables
) -> tuple[np.ndarray, np.ndarray]:
    """uint64 hashes of the word n-grams of normalized texts, concatenated, and how many
    each text has (0 for texts shorter than n words)."""
    n_words = np.array([t.count(" ") + 1 if t else 0 for t in normalized], dtype=np.int64)
    counts = np.maximum(n_words - n + 1, 0)
    if not counts.any():
        return np.empty(0, dtype=np.uint64), counts
    wh = word_hashes(" ".join(t for t in normalized if t).encode("utf-8"), tables)
    total = wh.size
    n_full = total - n + 1
    acc = wh[:n_full].copy()
    mult = np.uint64(SHINGLE_MULT)
    for k in range(1, n):  # Horner's rule, in place: no temporaries per step
        np.multiply(acc, mult, out=acc)
        np.add(acc, wh[k : k + n_full], out=acc)
    acc = fmix64_array(acc)
    # Keep the n-grams that start and end inside one text.
    word_off = np.concatenate(([0], np.cumsum(n_words)[:-1]))
    doc_of_word = np.repeat(np.arange(len(normalized)), n_words)[:n_full]
    keep = np.arange(n_full) <= (word_off + n_words - n)[doc_of_word]
    return acc[keep], counts


def ngram_hashes(normalized: str, n: int = 13) -> np.ndarray:
    """uint64 hashes of the word n-grams of one normalized text, in order."""
    return batch_ngram_hashes([normalized], n, PowerTables())[0]


def char_batches(texts: Sequence[str], batch_chars: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive batches of about batch_chars characters (one text at
    least): the unit of one vectorized pass, sized to stay in cache."""
    start = 0
    while start < len(texts):
        stop, size = start, 0
        while stop < len(texts) and (stop == start or size < batch_chars):
            size += len(texts[stop]) + 1
            stop += 1
        yield start, stop
        start = stop


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """The distinct values of a hash array, ascending: np.unique by sorting (numpy 2's
    hash-based unique was several times slower on uint64 hashes here)."""
    a = np.sort(a)
    if a.size < 2:
        return a
    return a[np.concatenate(([True], a[1:] != a[:-1]))]


def sorted_lookup(index: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, found) of query hashes in a sorted index: found[i] iff hashes[i] is in it,
    and then index[positions[i]] == hashes[i]. Queries are sorted first, so a large (memory-
    mapped) index is walked in order: 6x faster than lookups in text order on an index larger
    than the CPU caches (50M entries, 600k queries)."""
    if index.size == 0 or hashes.size == 0:
        return np.zeros(hashes.size, dtype=np.int64), np.zeros(hashes.size, dtype=bool)
    order = np.argsort(hashes)
    queries = hashes[order]
    pos = np.searchsorted(index, queries)
    pos[pos == index.size] = 0
    positions = np.empty(hashes.size, dtype=np.int64)
    found = np.empty(hashes.size, dtype=bool)
    positions[order] = pos
    found[order] = np.asarray(index[pos]) == queries
    return positions, found
