"""Where a document goes: its split and its output shard, from a hash of its id alone, so the
answer never depends on which part it came in, in what order, or what else the corpus holds."""

from __future__ import annotations

import hashlib
import math

SPLITS = ("train", "val")


def _unit(doc_id: str, key: bytes = b"") -> float:
    h = hashlib.blake2b(doc_id.encode(), digest_size=8, key=key).digest()
    return int.from_bytes(h, "big") / 2**64


def is_val(doc_id: str, val_fraction: float) -> bool:
    """Split by a hash of the id only (unkeyed: independent of the shuffle seed), so a document
    keeps its split whatever else changes."""
    if val_fraction <= 0:
        return False
    return _unit(doc_id) < val_fraction


def shard_count(rows: int, max_rows_per_shard: int) -> int:
    return math.ceil(rows / max_rows_per_shard) if rows else 0


def shard_index(doc_id: str, seed: int, count: int) -> int:
    """The output shard of a document: a hash of the id keyed with the seed (so a new seed
    spreads documents differently), independent of the split hash."""
    key = seed.to_bytes(8, "big", signed=True)
    return min(int(_unit(doc_id, key) * count), count - 1)
