"""Step two of the shards stage, per output shard: read its spill files, order the documents by
id (so the shard depends on its documents only, not on parts or spill order), shuffle them with
the seed, and write row groups. Rows are taken batch by batch: no column of the whole shard is
ever concatenated into one array, so a shard whose text passes 2 GiB (Arrow's string offsets)
is written like any other. Memory: one shard."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core.io import temp_path
from pipeline.shards.assign import SPLITS

# A row group closes at row_group_size rows or at this many bytes of tokens and text,
# whichever comes first: a row group's arrays stay far below 2 GiB however long the texts.
MAX_GROUP_BYTES = 256 << 20


def read_spill(files: list[Path], schema: pa.Schema) -> pa.Table:
    tables = []
    for f in sorted(files):
        with pa.OSFile(str(f), "rb") as src:
            tables.append(pa.ipc.open_file(src).read_all())
    return pa.concat_tables(tables) if tables else schema.empty_table()


def shuffled_order(table: pa.Table, seed: int, split: str, index: int) -> np.ndarray:
    """Row order of a shard: sorted by id (stable), then a permutation seeded with the shuffle
    seed, the split and the shard index."""
    by_id = pc.sort_indices(table.column("id")).to_numpy()
    rng = np.random.default_rng([seed % 2**64, SPLITS.index(split), index])
    return by_id[rng.permutation(len(by_id))]


def take_rows(table: pa.Table, indices: np.ndarray) -> pa.Table:
    """`table.take(indices)` one record batch at a time, then the small result reordered:
    never concatenates a whole column of `table`."""
    batches = table.to_batches()
    if not len(indices):
        return table.schema.empty_table()
    bounds = np.cumsum([0] + [b.num_rows for b in batches])
    which = np.searchsorted(bounds, indices, side="right") - 1
    grouped = np.argsort(which, kind="stable")
    pieces = []
    starts = np.flatnonzero(np.diff(which[grouped], prepend=-1))
    for lo, hi in zip(starts, [*starts[1:], len(grouped)], strict=True):
        sel = grouped[lo:hi]
        b = int(which[sel[0]])
        pieces.append(batches[b].take(pa.array(indices[sel] - bounds[b], pa.int64())))
    gathered = pa.Table.from_batches(pieces, schema=table.schema)
    # gathered row k holds indices[grouped[k]]; put every row back in the asked order.
    inverse = np.empty_like(grouped)
    inverse[grouped] = np.arange(len(grouped))
    return gathered.take(pa.array(inverse, pa.int64())).combine_chunks()


def row_bytes(table: pa.Table) -> np.ndarray:
    """Bytes of tokens and text per row (what a row group's arrays hold)."""
    size = table.column("n_tokens").to_numpy().astype(np.int64) * 4
    if "text" in table.schema.names:
        size += pc.binary_length(table.column("text")).to_numpy().astype(np.int64)
    return size


def group_bounds(sizes: np.ndarray, max_rows: int, max_bytes: int) -> list[int]:
    """Ends of the row groups over rows of these sizes (in write order)."""
    ends, rows, acc = [], 0, 0
    for i, s in enumerate(sizes.tolist()):
        if rows and (rows == max_rows or acc + s > max_bytes):
            ends.append(i)
            rows, acc = 0, 0
        rows += 1
        acc += s
    ends.append(len(sizes))
    return ends


def write_shard(
    files: list[Path],
    out: Path,
    schema: pa.Schema,
    seed: int,
    split: str,
    index: int,
    row_group_size: int,
    max_group_bytes: int | None = None,
) -> tuple[int, int]:
    """Write one shard atomically; returns (rows, tokens)."""
    table = read_spill(files, schema)
    order = shuffled_order(table, seed, split, index)
    sizes = row_bytes(table)[order]
    tmp = temp_path(out)
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd", write_statistics=True) as w:
            start = 0
            ends = (
                group_bounds(sizes, row_group_size, max_group_bytes or MAX_GROUP_BYTES)
                if len(sizes)
                else []
            )
            for end in ends:
                w.write_table(take_rows(table, order[start:end]), row_group_size=end - start)
                start = end
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    tokens = int(pc.sum(table.column("n_tokens")).as_py() or 0)
    return table.num_rows, tokens
