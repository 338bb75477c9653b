"""Files between stages: atomic writes, deterministic Parquet, file hashes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def part_name(index: int) -> str:
    return f"part-{index:05d}"


def temp_path(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp makes 0600 files; outputs are for readers (a training job, a report in a
    # browser) who may not be the user that built them.
    os.fchmod(fd, 0o644)
    os.close(fd)
    return Path(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = temp_path(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def write_table(path: Path, table: pa.Table, row_group_size: int = 4096) -> None:
    """Write Parquet atomically. Same table, same bytes: no timestamps, fixed settings."""
    tmp = temp_path(path)
    try:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            row_group_size=row_group_size,
            write_statistics=True,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def rows_to_table(rows: Iterable[Any], schema: pa.Schema) -> pa.Table:
    """Dataclass instances or dicts -> a table with exactly `schema`."""
    cols: dict[str, list[Any]] = {name: [] for name in schema.names}
    for row in rows:
        for name in schema.names:
            cols[name].append(row[name] if isinstance(row, dict) else getattr(row, name))
    return pa.table(cols, schema=schema)


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
