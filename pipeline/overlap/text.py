"""GPT-2's audit normalization and the word n-gram hashes of normalized lines.

GPT-2 (Radford et al. 2019, section 4) normalized text "to contain only lower-cased
alphanumeric words with a single space as a delimiter" before collecting 8-grams. Here that is,
exactly: lower case (`str.lower`), then words = maximal runs of characters for which
`str.isalnum()` holds (Unicode-aware; `_` and combining marks separate words), joined by single
spaces. Unlike `pipeline.core.ngrams.normalize` (dedup's: NFKC, casefold, punctuation deleted
so "don't" is "dont"), punctuation here *separates* words: "don't" is "don t".

Lines: an n-gram never crosses a line boundary, in an evaluation set or in the corpus. A line
is a piece of `str.splitlines()` (\\n, \\r, \\r\\n, \\v, \\f, \\x1c-\\x1e, \\x85, U+2028,
U+2029), everywhere.

Hashes are `pipeline.core.ngrams.batch_ngram_hashes` over the normalized lines: uint64 per
n-gram, the same word hash the dedup and Wikipedia stages use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from pipeline.core.ngrams import PowerTables, batch_ngram_hashes

# `[^\W_]` is exactly str.isalnum() on every code point (checked over all of Unicode in the
# tests): \w is isalnum() plus "_".
_WORD = re.compile(r"[^\W_]+")
# A non-ASCII alphanumeric character (the lines that need the regular expression).
_NON_ASCII_WORD = re.compile(r"[^\W\x00-\x7f]")
# Byte fast path: ASCII letters lower-cased, digits kept, every other byte a space. Used on
# ASCII lines, and on UTF-8 lines whose non-ASCII characters are all punctuation or symbols
# (curly quotes, dashes: most non-ASCII web lines), whose bytes >= 128 all become spaces.
_BYTES = bytes(
    c + 32 if 65 <= c <= 90 else c if (48 <= c <= 57 or 97 <= c <= 122) else 32 for c in range(256)
)


def normalize(line: str) -> str:
    """One line, GPT-2-normalized: lower case, alphanumeric runs joined by single spaces.

    Lower-casing comes first, so every word is alphanumeric ("İ".lower() is "i" plus a
    combining dot, which then separates words like any other non-alphanumeric character).
    """
    if line.isascii() or not _NON_ASCII_WORD.search(line):
        # No non-ASCII character of a non-alphanumeric one lower-cases to an alphanumeric one.
        data = line.encode("utf-8", "surrogatepass").translate(_BYTES)
        return b" ".join(data.split()).decode("ascii")
    return " ".join(_WORD.findall(line.lower()))


def normalized_lines(text: str) -> list[str]:
    """The non-empty normalized lines of a text (see the module docstring for "line")."""
    out = []
    for line in text.splitlines():
        norm = normalize(line)
        if norm:
            out.append(norm)
    return out


def line_ngram_hashes(
    lines: Sequence[str], n: int, tables: PowerTables
) -> tuple[np.ndarray, np.ndarray]:
    """uint64 hashes of the word n-grams of normalized lines (none crosses a line), in order,
    and how many each line has (0 below n words)."""
    return batch_ngram_hashes(lines, n, tables)


def n_words(lines: Sequence[str]) -> int:
    """Words in normalized non-empty lines."""
    return sum(line.count(" ") + 1 for line in lines)
