"""The on-disk signature store returns exactly the rows of the in-memory matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.dedup.signature_store import SignatureFile, read_rows


def test_signature_file_reads_rows_like_the_matrix(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, (1000, 16), dtype=np.uint32)
    store = SignatureFile(tmp_path / "s.u32", 16)
    for s in range(0, 1000, 333):  # parts of uneven size
        store.append(sigs[s : s + 333])
    with pytest.raises(RuntimeError):
        store[np.array([0])]  # not readable before it is sealed
    store.seal()
    assert store.shape == (1000, 16)
    assert (tmp_path / "s.u32").stat().st_size == 1000 * 16 * 4
    for idx in (
        np.arange(1000),  # one span
        rng.integers(0, 1000, 500),  # scattered, repeated, unsorted
        np.array([999, 0, 500, 501, 502, 0]),
        np.empty(0, dtype=np.int64),
    ):
        assert np.array_equal(read_rows(store, idx), sigs[idx])
    assert np.array_equal(store[10:20], sigs[10:20])
    with pytest.raises(IndexError):
        store[np.array([1000])]
    bad = SignatureFile(tmp_path / "t.u32", 16)
    with pytest.raises(ValueError):
        bad.append(sigs[:, :8])
    bad.close()
    store.close()
