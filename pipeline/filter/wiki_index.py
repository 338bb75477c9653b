"""The Wikipedia n-gram index: sorted unique uint64 hashes of every word n-gram of the
reference, in a folder that any number of filter parts read through one memory map.

Layout of an index folder: `ngrams.u64` (the hashes, little-endian, ascending),
`directory.u64` (where the hashes of each value of their top `directory_bits` bits start, about
8 hashes per entry: a lookup reads one directory entry and scans one cache line, where a binary
search over a few hundred million hashes misses the cache a dozen times) and `meta.json` (n,
normalization, count, the content sha256 of ngrams.u64, the sources).

The build is an external bucket sort, O(n log n) in time and bounded in memory whatever the
size of the reference: n-gram hashes (pipeline.core.ngrams, lines never crossed) are made
unique in memory a few tens of millions at a time (texts hashed a batch at a time by
`line_ngram_hashes`, as paragraph stripping hashes its documents), split by their top byte into 256 bucket
files, then each bucket is sorted and made unique on its own and appended in bucket order.
Peak memory is about the largest bucket (1/256 of the raw hashes) plus the buffer.

`ensure_index` builds the index of configured sources once per build folder under a file
lock that parallel filter parts share; the folder name is a fingerprint of the sources
(path, size, mtime), n and VERSION.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.io import atomic_write_json
from pipeline.core.ngrams import PowerTables, line_ngram_hashes, sorted_unique
from pipeline.filter.wiki_sources import iter_texts, source_files

log = logging.getLogger(__name__)

# Bump when markup stripping, normalization, hashing or the layout change: it names the cached
# indexes. 3: directory.u64.
VERSION = 3
NGRAMS = "ngrams.u64"
DIRECTORY = "directory.u64"
META = "meta.json"
# Hashes per directory entry on average: 8 x 8 bytes is one 64-byte cache line.
PER_ENTRY = 8
BUCKET_BITS = 8
# Hashes gathered before they are made unique and spilled to the buckets (256 MiB).
BUFFER = 1 << 25
# Characters of normalized text hashed per vectorized pass.
BATCH_CHARS = 1 << 20


def directory_bits(count: int) -> int:
    """Top bits that address the directory of an index of count hashes."""
    return max(0, math.ceil(math.log2(max(count, 1) / PER_ENTRY)))


def build_directory(hashes: np.ndarray, bits: int) -> np.ndarray:
    """directory[b] = where the hashes whose top `bits` bits are b start; one entry more at
    the end (the count), so bucket b is hashes[directory[b]:directory[b + 1]]."""
    if bits == 0:
        return np.array([0, hashes.size], dtype=np.uint64)
    out = np.empty((1 << bits) + 1, dtype=np.uint64)
    step = 1 << 22
    for start in range(0, 1 << bits, step):
        keys = np.arange(start, min(start + step, 1 << bits), dtype=np.uint64)
        out[start : start + keys.size] = np.searchsorted(hashes, keys << np.uint64(64 - bits))
    out[-1] = hashes.size
    return out


class WikiIndex:
    """Sorted unique n-gram hashes and their directory; `contains` answers membership for a
    batch of query hashes."""

    def __init__(self, hashes: np.ndarray, directory: np.ndarray | None = None):
        self.hashes = hashes
        self.bits = directory_bits(int(hashes.size))
        self.directory = build_directory(hashes, self.bits) if directory is None else directory

    @classmethod
    def from_hashes(cls, hashes: np.ndarray) -> WikiIndex:
        return cls(sorted_unique(np.asarray(hashes, dtype=np.uint64)))

    @property
    def size(self) -> int:
        return int(self.hashes.size)

    def contains(self, queries: np.ndarray) -> np.ndarray:
        """found[i] iff queries[i] is in the index. Queries are sorted first, so a memory-
        mapped index and its directory are walked in order; each query then scans its
        bucket (about a cache line) until it meets a hash not smaller than itself."""
        found = np.zeros(queries.size, dtype=bool)
        if self.size == 0 or queries.size == 0:
            return found
        order = np.argsort(queries)
        qs = queries[order]
        if self.bits:
            bucket = (qs >> np.uint64(64 - self.bits)).astype(np.int64)
        else:
            bucket = np.zeros(qs.size, dtype=np.int64)
        lo = np.asarray(self.directory[bucket]).astype(np.int64)
        hi = np.asarray(self.directory[bucket + 1]).astype(np.int64)
        idx = np.flatnonzero(lo < hi)
        pos, end, q = lo[idx], hi[idx], qs[idx]
        hit_sorted = np.zeros(qs.size, dtype=bool)
        while idx.size:
            v = np.asarray(self.hashes[pos])
            hit = v == q
            hit_sorted[idx[hit]] = True
            go = (v < q) & (pos + 1 < end)
            idx, pos, end, q = idx[go], pos[go] + 1, end[go], q[go]
        found[order] = hit_sorted
        return found


class _Buckets:
    def __init__(self, folder: Path):
        self.folder = folder
        self.files = [open(folder / f"b{i:03d}.u64", "wb") for i in range(1 << BUCKET_BITS)]  # noqa: SIM115

    def spill(self, hashes: np.ndarray) -> None:
        uniq = sorted_unique(hashes)
        tops = (uniq >> np.uint64(64 - BUCKET_BITS)).astype(np.int64)
        bounds = np.searchsorted(tops, np.arange((1 << BUCKET_BITS) + 1))
        for i, f in enumerate(self.files):
            if bounds[i + 1] > bounds[i]:
                uniq[bounds[i] : bounds[i + 1]].astype("<u8").tofile(f)

    def merge_into(self, out: Path) -> tuple[int, str, list[int]]:
        """Sort and unique every bucket, append in order; (count, sha256 of the bytes, count
        of each bucket)."""
        digest = hashlib.sha256()
        sizes = []
        with open(out, "wb") as dst:
            for f in self.files:
                f.close()
                path = Path(f.name)
                part = sorted_unique(np.fromfile(path, dtype="<u8"))
                path.unlink()
                data = part.astype("<u8").tobytes()
                dst.write(data)
                digest.update(data)
                sizes.append(int(part.size))
        return sum(sizes), digest.hexdigest(), sizes


def _write_directory(ngrams: Path, sizes: list[int], bits: int, out: Path) -> None:
    """directory.u64 of a merged ngrams.u64, one top-byte bucket in memory at a time (a
    memory map of the whole file would count every page of it in the build's RSS)."""
    count = sum(sizes)
    if bits < BUCKET_BITS:
        hashes = np.fromfile(ngrams, dtype="<u8") if count else np.empty(0, np.uint64)
        build_directory(hashes, bits).astype("<u8").tofile(out)
        return
    per = 1 << (bits - BUCKET_BITS)
    with open(out, "wb") as dst:
        offset = 0
        for top, size in enumerate(sizes):
            part = np.fromfile(ngrams, dtype="<u8", count=size, offset=8 * offset)
            keys = np.arange(top * per, (top + 1) * per, dtype=np.uint64)
            starts = offset + np.searchsorted(part, keys << np.uint64(64 - bits))
            starts.astype("<u8").tofile(dst)
            offset += size
        np.array([count], dtype="<u8").tofile(dst)


def build_index(
    sources: Sequence[str | Path],
    out_dir: Path,
    n: int = 13,
    processes: int = 1,
    buffer: int = BUFFER,
) -> dict[str, Any]:
    """Build an index folder at out_dir (written beside it, renamed into place); returns its
    meta."""
    files = source_files(sources)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        buckets = _Buckets(work)
        tables = PowerTables()
        pending: list[np.ndarray] = []
        n_pending = texts = paragraphs = raw = 0
        batch: list[str] = []
        size = 0

        def hash_batch() -> None:
            nonlocal size, n_pending, raw, paragraphs
            if batch:
                hashes, line, _ = line_ngram_hashes(batch, n, tables)
                pending.append(hashes)
                n_pending += hashes.size
                raw += hashes.size
                paragraphs += int(np.count_nonzero(np.diff(line))) + 1 if line.size else 0
                batch.clear()
                size = 0
            if n_pending >= buffer:
                buckets.spill(np.concatenate(pending))
                pending.clear()
                n_pending = 0

        for src in files:
            for text in iter_texts(src, processes):
                texts += 1
                batch.append(text)
                size += len(text) + 1
                if size >= BATCH_CHARS:
                    hash_batch()
        hash_batch()
        if pending:
            buckets.spill(np.concatenate(pending))
        count, sha, sizes = buckets.merge_into(work / NGRAMS)
        bits = directory_bits(count)
        _write_directory(work / NGRAMS, sizes, bits, work / DIRECTORY)
        meta = {
            "version": VERSION,
            "ngram": n,
            "normalization": "pipeline.core.ngrams.normalize",
            "hash": "pipeline.core.ngrams word hashes, Horner over n words, fmix64",
            "ngrams": count,
            "directory_bits": bits,
            "raw_ngrams": raw,
            "sha256": sha,
            "texts": texts,
            "paragraphs": paragraphs,  # lines with at least one n-gram
            "sources": [{"path": str(p.resolve()), "size": p.stat().st_size} for p in files],
            "build_seconds": round(time.perf_counter() - t0, 3),
        }
        atomic_write_json(work / META, meta)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(work, out_dir)
        return meta
    finally:
        shutil.rmtree(work, ignore_errors=True)


def read_meta(index_dir: Path) -> dict[str, Any]:
    path = Path(index_dir) / META
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"not a webtext Wikipedia index: {index_dir} ({err})") from None
    if meta.get("version") != VERSION:
        raise ConfigError(
            f"{index_dir}: index version {meta.get('version')}, this webtext reads {VERSION}: "
            "rebuild it with `webtext wiki-index`"
        )
    return dict(meta)


def check_index(index_dir: Path, n: int) -> Path:
    """A prebuilt index folder, if it is one of this version holding n-grams of length n."""
    meta = read_meta(index_dir)
    if meta["ngram"] != n:
        raise ConfigError(f"wikipedia.index {index_dir} holds {meta['ngram']}-grams, not {n}")
    return index_dir


def load_index(index_dir: Path) -> WikiIndex:
    """The index as read-only memory maps: parallel parts share the page cache."""
    meta = read_meta(index_dir)
    count = int(meta["ngrams"])
    bits = int(meta["directory_bits"])
    paths = {NGRAMS: 8 * count, DIRECTORY: 8 * ((1 << bits) + 1)}
    for name, size in paths.items():
        path = Path(index_dir) / name
        if not path.is_file() or path.stat().st_size != size:
            raise ConfigError(f"{path}: missing or not the size meta.json says")
    directory = np.memmap(Path(index_dir) / DIRECTORY, dtype="<u8", mode="r")
    if count == 0:
        return WikiIndex(np.empty(0, dtype=np.uint64), directory)
    return WikiIndex(np.memmap(Path(index_dir) / NGRAMS, dtype="<u8", mode="r"), directory)


def _sources_key(files: list[Path], n: int) -> str:
    blob = json.dumps(
        {
            "version": VERSION,
            "n": n,
            "sources": [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files],
        }
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ensure_index(
    sources: list[str], index: str | None, n: int, root: Path, processes: int = 1
) -> Path:
    """The index folder for the configured reference: `index` as given (its n must match),
    else the build folder's cached index of `sources`, built now if missing. Parallel callers
    wait on a lock; one builds."""
    if index is not None:
        return check_index(Path(index), n)
    files = source_files(sources)
    cache = Path(root) / "wikipedia"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"index-{_sources_key(files, n)}"
    with open(cache / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / META).is_file():
            log.info("building the Wikipedia %d-gram index of %d source files", n, len(files))
            meta = build_index(files, target, n, processes)
            log.info("Wikipedia index: %d n-grams in %.1f s", meta["ngrams"], meta["build_seconds"])
    return target
