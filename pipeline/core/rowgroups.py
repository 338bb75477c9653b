"""A Parquet part written as it is produced: rows are buffered up to one row group, then written.

The file has the bytes `io.write_table` would give the whole table (same settings, same row
groups), so a stage can stream its output without changing it; it appears atomically on close.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.io import rows_to_table, temp_path


class RowGroupWriter:
    def __init__(self, path: Path, schema: pa.Schema, row_group_size: int = 4096) -> None:
        self.path = Path(path)
        self.schema = schema
        self.row_group_size = row_group_size
        self.rows = 0
        self._buffer: list[Any] = []
        self._tmp = temp_path(self.path)
        self._writer = pq.ParquetWriter(
            self._tmp, schema, compression="zstd", write_statistics=True
        )

    def add(self, row: Any) -> None:
        """One row: a dict or a record dataclass of the schema."""
        self._buffer.append(row)
        if len(self._buffer) == self.row_group_size:
            self._flush()

    def _flush(self) -> None:
        table = rows_to_table(self._buffer, self.schema)
        self._writer.write_table(table, row_group_size=self.row_group_size)
        self.rows += table.num_rows
        self._buffer = []

    def close(self) -> None:
        # write_table writes one empty row group for an empty table: so does this.
        if self._buffer or self.rows == 0:
            self._flush()
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
