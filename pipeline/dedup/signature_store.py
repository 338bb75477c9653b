"""MinHash signatures of the whole build, kept either in memory or in one flat file on disk.

The file is read with positional reads, not a memory map: mapped pages stay in the process's
resident set once touched, and the out-of-core path exists to keep the signatures (512 bytes
per document at 128 permutations, the largest per-document structure) out of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Rows closer than this are read in one span rather than one read each.
_GAP = 8


class SignatureFile:
    """(n, num_perm) uint32 rows appended part by part, then read by row index."""

    def __init__(self, path: Path, num_perm: int):
        self.path = Path(path)
        self.num_perm = num_perm
        self._rows = 0
        self._writer: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - closed by seal
        self._fd = -1

    def append(self, sigs: np.ndarray) -> None:
        if self._writer is None:
            raise RuntimeError("signature file already sealed")
        if sigs.ndim != 2 or sigs.shape[1] != self.num_perm:
            raise ValueError(f"expected rows of {self.num_perm} values, got {sigs.shape}")
        self._writer.write(np.ascontiguousarray(sigs, dtype="<u4").tobytes())
        self._rows += sigs.shape[0]

    def seal(self) -> SignatureFile:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._fd = os.open(self.path, os.O_RDONLY)
        return self

    def close(self) -> None:
        self.seal()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def shape(self) -> tuple[int, int]:
        return (self._rows, self.num_perm)

    def _span(self, start: int, stop: int) -> np.ndarray:
        width = self.num_perm * 4
        data = os.pread(self._fd, (stop - start) * width, start * width)
        if len(data) != (stop - start) * width:
            raise OSError(f"{self.path}: short read of rows {start}..{stop}")
        return np.frombuffer(data, dtype="<u4").reshape(stop - start, self.num_perm)

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        if self._fd < 0:
            raise RuntimeError("signature file not sealed or already closed")
        if isinstance(key, slice):
            start, stop, step = key.indices(self._rows)
            if step != 1:
                raise IndexError("only contiguous slices")
            return self._span(start, max(start, stop))
        idx = np.asarray(key, dtype=np.int64)
        if idx.size == 0:
            return np.empty((0, self.num_perm), dtype=np.uint32)
        if idx.min() < 0 or idx.max() >= self._rows:
            raise IndexError("signature row out of range")
        uniq, inverse = np.unique(idx, return_inverse=True)
        out = np.empty((uniq.size, self.num_perm), dtype=np.uint32)
        breaks = np.flatnonzero(np.diff(uniq) > _GAP) + 1
        lo = 0
        for hi in [*breaks.tolist(), uniq.size]:
            seg = uniq[lo:hi]
            span = self._span(int(seg[0]), int(seg[-1]) + 1)
            out[lo:hi] = span[seg - seg[0]]
            lo = hi
        return out[inverse.reshape(idx.shape)]


Signatures = np.ndarray | SignatureFile


def read_rows(sigs: Signatures, idx: np.ndarray) -> np.ndarray:
    """Signature rows by index, as an in-memory array, from either store."""
    return np.asarray(sigs[idx])
