"""Read shards back for training: token ids of a split, or fixed-length blocks of them, as numpy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipeline.core.io import sha256_file


def read_manifest(shards_dir: Path) -> dict:
    return json.loads((Path(shards_dir) / "manifest.json").read_text())


def token_dtype(manifest: dict) -> type[np.unsignedinteger]:
    return np.uint16 if manifest["tokenizer"]["token_dtype"] == "uint16" else np.uint32


def iter_tokens(
    shards_dir: Path, split: str = "train", verify: bool = False
) -> Iterator[np.ndarray]:
    """Token ids of each row group, in manifest order (documents already shuffled, EOT-separated)."""
    shards_dir = Path(shards_dir)
    manifest = read_manifest(shards_dir)
    dtype = token_dtype(manifest)
    for entry in manifest["shards"]:
        if entry["split"] != split:
            continue
        path = shards_dir / entry["path"]
        if verify and sha256_file(path) != entry["sha256"]:
            raise ValueError(f"{path}: sha256 differs from the manifest")
        pf = pq.ParquetFile(path)
        for rg in range(pf.num_row_groups):
            col = pf.read_row_group(rg, columns=["tokens"]).column("tokens").combine_chunks()
            yield col.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def iter_blocks(
    shards_dir: Path, block_size: int, split: str = "train", drop_last: bool = True
) -> Iterator[np.ndarray]:
    """Consecutive blocks of `block_size` token ids; the tail shorter than a block is dropped
    unless drop_last is False."""
    if block_size <= 0:
        raise ValueError("block_size must be positive")
    carry = np.empty(0, dtype=np.uint32)
    for chunk in iter_tokens(shards_dir, split):
        buf = np.concatenate([carry, chunk]) if carry.size else chunk
        n_full = buf.size // block_size
        for i in range(n_full):
            yield buf[i * block_size : (i + 1) * block_size]
        carry = buf[n_full * block_size :]
    if carry.size and not drop_last:
        yield carry
