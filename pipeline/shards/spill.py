"""Step one of the shards stage, per dedup part: read record batches, tokenize them, and append
each document to the spill file of its output shard (Arrow IPC, zstd). Memory: one read batch
plus the spill buffers, whose size is capped, never the part or the corpus."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tiktoken

from pipeline.core.io import temp_path
from pipeline.core.tokenizer import encode_docs
from pipeline.shards.assign import SPLITS, is_val, shard_index
from schemas.records import SHARD_DOC_COLUMNS

META_COLUMNS = list(SHARD_DOC_COLUMNS)
SOURCE_COLUMNS = [*META_COLUMNS, "text"]
READ_BATCH = 1024
# A shard's buffer is written out at this many rows; all buffers when together they pass
# FLUSH_BYTES. Each spill batch is therefore far below Arrow's 2 GiB per-array offsets.
FLUSH_ROWS = 4096
FLUSH_BYTES = 64 << 20


@dataclass(frozen=True)
class Plan:
    """Shard counts per split, fixed before any document is routed."""

    counts: dict[str, int]
    val_fraction: float
    seed: int

    def route(self, doc_id: str) -> tuple[str, int]:
        split = "val" if is_val(doc_id, self.val_fraction) else "train"
        return split, shard_index(doc_id, self.seed, self.counts[split])


def spill_file(spill_dir: Path, split: str, index: int, part: str) -> Path:
    return spill_dir / f"{split}-{index:05d}" / f"{part}.arrow"


@dataclass
class _Spiller:
    spill_dir: Path
    part: str
    schema: pa.Schema
    flush_rows: int
    flush_bytes: int
    buffers: dict[tuple[str, int], list[pa.RecordBatch]] = field(default_factory=dict)
    writers: dict[tuple[str, int], tuple[pa.ipc.RecordBatchFileWriter, Path]] = field(
        default_factory=dict
    )
    buffered_bytes: int = 0

    def add(self, key: tuple[str, int], batch: pa.RecordBatch) -> None:
        self.buffers.setdefault(key, []).append(batch)
        self.buffered_bytes += batch.nbytes
        if sum(b.num_rows for b in self.buffers[key]) >= self.flush_rows:
            self.flush(key)
        if self.buffered_bytes >= self.flush_bytes:
            for k in sorted(self.buffers):
                self.flush(k)

    def flush(self, key: tuple[str, int]) -> None:
        batches = self.buffers.pop(key, [])
        if not batches:
            return
        self.buffered_bytes -= sum(b.nbytes for b in batches)
        if key not in self.writers:
            final = spill_file(self.spill_dir, key[0], key[1], self.part)
            tmp = temp_path(final)
            opts = pa.ipc.IpcWriteOptions(compression="zstd")
            self.writers[key] = (pa.ipc.new_file(tmp, self.schema, options=opts), tmp)
        table = pa.Table.from_batches(batches, schema=self.schema).combine_chunks()
        self.writers[key][0].write_table(table)

    def close(self) -> None:
        for key in sorted(self.buffers):
            self.flush(key)
        for key, (writer, tmp) in sorted(self.writers.items()):
            writer.close()
            tmp.replace(spill_file(self.spill_dir, key[0], key[1], self.part))

    def abort(self) -> None:
        for writer, tmp in self.writers.values():
            writer.close()
            tmp.unlink(missing_ok=True)


def tokens_array(token_lists: list[list[int]], token_type: pa.DataType) -> pa.Array:
    lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
    offsets = np.zeros(len(token_lists) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = pa.array(
        np.fromiter((i for t in token_lists for i in t), dtype=np.int64, count=int(lengths.sum())),
        type=pa.int64(),
    ).cast(token_type)  # a checked cast: an id beyond the type's range raises
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=pa.list_(token_type))


def _routed(
    part_path: Path, plan: Plan, enc: tiktoken.Encoding, schema: pa.Schema
) -> Iterator[tuple[tuple[str, int], pa.RecordBatch]]:
    token_type = schema.field("tokens").type.value_type
    include_text = "text" in schema.names
    for batch in pq.ParquetFile(part_path).iter_batches(
        batch_size=READ_BATCH, columns=SOURCE_COLUMNS
    ):
        ids = batch.column("id").to_pylist()
        token_lists = encode_docs(enc, batch.column("text").to_pylist())
        cols = [batch.column(c) for c in META_COLUMNS]
        cols.append(pa.array([len(t) for t in token_lists], pa.int32()))
        cols.append(tokens_array(token_lists, token_type))
        if include_text:
            cols.append(batch.column("text"))
        out = pa.RecordBatch.from_arrays(cols, schema=schema)
        dest = [plan.route(i) for i in ids]
        by_key: dict[tuple[str, int], list[int]] = {}
        for row, key in enumerate(dest):
            by_key.setdefault(key, []).append(row)
        for key in sorted(by_key):
            yield key, out.take(pa.array(by_key[key], pa.int64()))


def spill_part(
    part_path: Path,
    spill_dir: Path,
    plan: Plan,
    enc: tiktoken.Encoding,
    schema: pa.Schema,
    flush_rows: int | None = None,
    flush_bytes: int | None = None,
) -> dict[str, int]:
    """Spill one dedup part; returns its rows per split. Spill files appear complete or not at
    all (written under a temporary name)."""
    part = part_path.name.split(".")[0]
    spiller = _Spiller(
        spill_dir, part, schema, flush_rows or FLUSH_ROWS, flush_bytes or FLUSH_BYTES
    )
    rows = dict.fromkeys(SPLITS, 0)
    try:
        for key, batch in _routed(part_path, plan, enc, schema):
            rows[key[0]] += batch.num_rows
            spiller.add(key, batch)
    except BaseException:
        spiller.abort()
        raise
    spiller.close()
    return rows
