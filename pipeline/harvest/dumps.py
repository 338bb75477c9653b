"""Streaming readers for Reddit submission dumps (Pushshift, Arctic Shift, our API dumps).

Formats are recognised by their magic bytes, not by file names: .zst (any window up to 2^31,
several frames), .xz (several streams), .bz2, .gz and plain NDJSON. A truncated or corrupt file
yields every complete line decoded before the damage and then reports the damage (file,
compressed offset, decompressed offset, error) instead of raising: one bad month must not fail
a build.
"""

from __future__ import annotations

import bz2
import glob
import lzma
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import zstandard

from pipeline.core.errors import ConfigError

ZSTD_MAX_WINDOW = 2**31  # Pushshift/Arctic Shift compress with --long=31
CHUNK = 1 << 20
# Compressed bytes given to the decoder at a time: the granularity of a damage offset.
FEED = 1 << 16
# Files a folder input contributes; other files (README, LICENSE, checksums) are skipped.
DUMP_SUFFIXES = (".zst", ".xz", ".bz2", ".gz", ".ndjson", ".jsonl", ".json")

_MAGIC = (
    (b"\x28\xb5\x2f\xfd", "zst"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bz2"),
    (b"\x1f\x8b", "gz"),
)


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class Damage:
    """Where a dump stopped being readable."""

    path: str
    # Compressed offset where the decoder noticed the damage: the start of the FEED-sized slice
    # it was decoding (formats with block checksums notice at the block's end), or the file
    # size for a truncated file.
    offset: int
    decompressed_offset: int  # bytes of clean output before the damage
    lines: int  # complete lines yielded before the damage
    error: str

    def detail(self) -> str:
        return (
            f"{self.path}: offset {self.offset} (compressed), "
            f"{self.decompressed_offset} bytes / {self.lines} lines decoded: {self.error}"
        )


def detect_format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "plain"


def _new_decompressor(fmt: str) -> _Decompressor:
    if fmt == "zst":
        return zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj()
    if fmt == "xz":
        return lzma.LZMADecompressor()
    if fmt == "bz2":
        return bz2.BZ2Decompressor()
    if fmt == "gz":
        return zlib.decompressobj(wbits=31)  # type: ignore[return-value]
    raise ValueError(f"unknown format {fmt}")


class DumpReader:
    """Iterate the lines of one dump file in batches; `damage` is set if the file is damaged."""

    def __init__(self, path: str | Path, chunk_size: int = CHUNK):
        self.path = Path(path)
        self.chunk_size = chunk_size
        self.damage: Damage | None = None
        self.format = "unknown"
        self.n_lines = 0
        self.bytes_out = 0

    def _fail(self, offset: int, err: BaseException | str) -> None:
        msg = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
        self.damage = Damage(str(self.path), offset, self.bytes_out, self.n_lines, msg)

    def _chunks(self) -> Iterator[bytes]:
        """Decompressed chunks; stops (setting `damage`) at the first unreadable byte."""
        try:
            self.format = detect_format(self.path)
            f = open(self.path, "rb")  # noqa: SIM115 -- closed by `with f` below
        except OSError as err:
            self._fail(0, err)
            return
        with f:
            if self.format == "plain":
                while chunk := f.read(self.chunk_size):
                    yield chunk
                return
            dec = _new_decompressor(self.format)
            fed = False  # has the current stream/frame received any byte?
            offset = 0
            while True:
                raw = f.read(self.chunk_size)
                if not raw:
                    break
                for pos in range(0, len(raw), FEED):
                    start = offset + pos
                    data = raw[pos : pos + FEED]
                    while data:
                        if not fed and self.format == "xz":
                            # xz allows null stream padding between streams.
                            data = data.lstrip(b"\x00")
                            if not data:
                                break
                        fed = True
                        try:
                            out = dec.decompress(data)
                        except Exception as err:  # noqa: BLE001 -- each codec has its own error type
                            self._fail(start, err)
                            return
                        if out:
                            yield out
                        if dec.eof:
                            data = dec.unused_data
                            dec = _new_decompressor(self.format)
                            fed = False
                        else:
                            data = b""
                offset += len(raw)
            if fed and not dec.eof:
                self._fail(offset, "truncated: end of file inside a compressed frame/stream")

    def batches(self) -> Iterator[list[bytes]]:
        """Lists of complete, non-blank lines (without the newline)."""
        pending = b""
        for chunk in self._chunks():
            self.bytes_out += len(chunk)
            lines = chunk.split(b"\n")
            if pending:  # joined to the first piece only: no copy of the whole chunk
                lines[0] = pending + lines[0]
            pending = lines.pop()
            # isspace() stops at the first non-blank byte: no copy per line, unlike strip().
            batch = [line for line in lines if line and not line.isspace()]
            if batch:
                self.n_lines += len(batch)
                yield batch
        # A trailing fragment after damage is an incomplete line: the damage row stands for it.
        if self.damage is None and pending and not pending.isspace():
            self.n_lines += 1
            yield [pending]

    def __iter__(self) -> Iterator[bytes]:
        for batch in self.batches():
            yield from batch


def expand_inputs(inputs: Iterable[str | os.PathLike[Any]]) -> list[Path]:
    """Files, globs and folders -> sorted unique dump files. A pattern that matches nothing is
    a ConfigError: a typo must not silently produce an empty corpus."""
    found: set[Path] = set()
    for item in inputs:
        text = str(item)
        p = Path(text)
        if p.is_dir():
            matches = [
                q
                for q in p.rglob("*")
                if q.is_file() and not q.name.startswith(".") and q.name.endswith(DUMP_SUFFIXES)
            ]
        elif p.is_file():
            matches = [p]
        else:
            matches = [Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file()]
        if not matches:
            raise ConfigError(f"harvest input matches no file: {text}")
        found.update(q.resolve() for q in matches)
    return sorted(found)
