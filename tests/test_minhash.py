"""Vectorized signatures equal datasketch's MinHash; normalization equals its definition."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from datasketch import MinHash

from pipeline.core.ngrams import normalize, normalize_reference, text_hash
from pipeline.dedup.minhash import shingle_hash, shingles, signatures
from tests.test_dedup_helpers import gold_bodies

EDGE = [
    "",
    "one",
    "two words",
    "a b c d",
    "a b c d e",
    "é ü ñ 中文 字 😀 𝐁old Straße ﬁ",
    "Hello, World! don't_stop \x1c x\x1fy",
    "tab\tnew\nline\r\x0b\x0c  end",
]


def _datasketch(norm: str, num_perm: int, seed: int, ngram: int) -> np.ndarray:
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash)
    sh = shingles(norm, ngram)
    if sh:
        m.update_batch(sh)
    return m.hashvalues


def test_signatures_identical_to_datasketch(shared_data: Path) -> None:
    texts = [normalize(t) for t in gold_bodies(shared_data, min_words=0)[:80] + EDGE]
    for num_perm, seed, ngram in [(128, 1, 5), (64, 42, 3)]:
        ours = signatures(texts, num_perm, seed, ngram, batch_chars=20_000)
        assert ours.shape == (len(texts), num_perm) and ours.dtype == np.uint32
        for i, t in enumerate(texts):
            assert np.array_equal(ours[i], _datasketch(t, num_perm, seed, ngram)), i


def test_batching_does_not_change_signatures(shared_data: Path) -> None:
    texts = [normalize(t) for t in gold_bodies(shared_data)[:40]]
    assert np.array_equal(signatures(texts, batch_chars=1), signatures(texts, batch_chars=1 << 30))


def test_normalize_matches_definition(shared_data: Path) -> None:
    rnd = random.Random(0)
    samples = gold_bodies(shared_data, min_words=0)[:50] + EDGE
    for _ in range(300):
        pools = [(0, 128), (0x80, 0x3000), (0xF900, 0x10000), (0x10000, 0x20000)]
        samples.append("".join(chr(rnd.randrange(*rnd.choice(pools))) for _ in range(60)))
    for t in samples:
        assert normalize(t) == normalize_reference(t)
    assert normalize("  Don't  STOP—the “Music”!\n\n") == "dont stopthe music"


def test_text_hash_ignores_case_punctuation_and_spacing() -> None:
    a = text_hash(normalize("Hello,   World!\nIt's here."))
    assert a == text_hash(normalize("hello world its here"))
    assert a != text_hash(normalize("hello world its there"))
