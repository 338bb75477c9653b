"""Streaming readers for Reddit submission dumps (Pushshift, Arctic Shift, our API dumps).

Formats are recognised by their magic bytes, not by file names: .zst (any window up to 2^31,
several frames), .xz (several streams), .bz2, .gz and plain NDJSON. Damage costs its region
only: when a frame (zst), stream (xz, bz2) or member (gz) cannot be decoded, the reader skips
to the next one (found by its magic bytes) and goes on, and every damaged region is reported
(file, compressed byte range, where it was noticed, error) instead of raising. Lines cut by a
damaged region are lost with it: the incomplete line before it, and the fragment after it
unless that starts like a record. A truncated file is damage from its last frame to the end.
"""

from __future__ import annotations

import bz2
import glob
import lzma
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
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


# Where a frame/stream/member of each format starts: where decoding resumes after damage.
_RESYNC = {
    "zst": re.compile(re.escape(b"\x28\xb5\x2f\xfd")),
    "xz": re.compile(re.escape(b"\xfd7zXZ\x00")),
    "bz2": re.compile(rb"BZh[1-9]1AY&SY"),
    "gz": re.compile(rb"\x1f\x8b\x08"),
}


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class Damage:
    """A region of a dump that could not be read."""

    path: str
    # Compressed offset where the decoder noticed the damage: the start of the FEED-sized slice
    # it was decoding (formats with block checksums notice at the block's end), or the file
    # size for a truncated file.
    offset: int
    decompressed_offset: int  # bytes of output before the damage was noticed
    lines: int  # complete lines yielded before the damage was noticed
    error: str
    start: int = 0  # the damaged region: from the start of the frame that failed...
    end: int = 0  # ...to where decoding resumed (the file size when it did not)

    def detail(self) -> str:
        return (
            f"{self.path}: offset {self.offset} (compressed), bytes {self.start}-{self.end} "
            f"lost, {self.decompressed_offset} bytes / {self.lines} lines decoded before: "
            f"{self.error}"
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
    """Iterate the lines of one dump file in batches; `damages` lists the damaged regions."""

    def __init__(self, path: str | Path, chunk_size: int = CHUNK):
        self.path = Path(path)
        self.chunk_size = chunk_size
        self.damages: list[Damage] = []
        self.format = "unknown"
        self.n_lines = 0
        self.bytes_out = 0
        self.size = 0  # compressed bytes of the file, once opened

    @property
    def damage(self) -> Damage | None:
        """The first damaged region, if any."""
        return self.damages[0] if self.damages else None

    def _fail(self, offset: int, err: BaseException | str, start: int, end: int) -> None:
        msg = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
        self.damages.append(
            Damage(str(self.path), offset, self.bytes_out, self.n_lines, msg, start, end)
        )

    def _next_start(self, f: Any, after: int, size: int) -> int | None:
        """Offset of the next frame/stream start at or after `after`, or None."""
        pattern = _RESYNC[self.format]
        overlap = 16
        pos = after
        while pos < size:
            f.seek(pos)
            window = f.read(self.chunk_size + overlap)
            m = pattern.search(window)
            if m is not None:
                return pos + m.start()
            pos += self.chunk_size
        return None

    def _segment(self, f: Any, start: int) -> Iterator[bytes | tuple[int, int, str]]:
        """Decode from `start`: chunks, then (frame start, noticed at, error) if it fails."""
        f.seek(start)
        dec = _new_decompressor(self.format)
        fed = False  # has the current stream/frame received any byte?
        offset = start
        frame = start
        while True:
            raw = f.read(self.chunk_size)
            if not raw:
                break
            for pos in range(0, len(raw), FEED):
                base = offset + pos  # file offset of `data`
                data = raw[pos : pos + FEED]
                while data:
                    if not fed and self.format == "xz":
                        # xz allows null stream padding between streams.
                        stripped = data.lstrip(b"\x00")
                        base += len(data) - len(stripped)
                        data = stripped
                        if not data:
                            break
                    if not fed:
                        frame = base
                    fed = True
                    try:
                        out = dec.decompress(data)
                    except Exception as err:  # noqa: BLE001 -- each codec has its own error type
                        yield (frame, offset + pos, f"{type(err).__name__}: {err}")
                        return
                    if out:
                        yield out
                    if dec.eof:
                        rest = dec.unused_data
                        base += len(data) - len(rest)
                        data = rest
                        dec = _new_decompressor(self.format)
                        fed = False
                    else:
                        data = b""
            offset += len(raw)
        if fed and not dec.eof:
            yield (frame, offset, "truncated: end of file inside a compressed frame/stream")

    def _chunks(self) -> Iterator[bytes | None]:
        """Decompressed chunks; None where a damaged region was skipped."""
        try:
            self.format = detect_format(self.path)
            f = open(self.path, "rb")  # noqa: SIM115 -- closed by `with f` below
            size = self.size = os.fstat(f.fileno()).st_size
        except OSError as err:
            self._fail(0, err, 0, 0)
            return
        with f:
            if self.format == "plain":
                while chunk := f.read(self.chunk_size):
                    yield chunk
                return
            start: int | None = 0
            while start is not None:
                out_before = self.bytes_out
                failure = None
                for item in self._segment(f, start):
                    if isinstance(item, tuple):
                        failure = item
                        break
                    yield item
                if failure is None:
                    return
                frame, noticed, error = failure
                resume = self._next_start(f, max(frame + 1, start + 1), size)
                end = size if resume is None else resume
                last = self.damages[-1] if self.damages else None
                if last is not None and last.end == start and self.bytes_out == out_before:
                    # Decoding from the resync point failed at once (a false magic, or the
                    # damage runs on): one region, not one per attempt.
                    self.damages[-1] = replace(last, end=end)
                else:
                    self._fail(noticed, error, frame, end)
                if resume is not None:
                    yield None
                start = resume

    def batches(self) -> Iterator[list[bytes]]:
        """Lists of complete, non-blank lines (without the newline)."""
        pending = b""
        resumed = False
        for chunk in self._chunks():
            if chunk is None:
                # The line under way ran into the damage: incomplete, it goes with the region.
                pending = b""
                resumed = True
                continue
            self.bytes_out += len(chunk)
            if resumed and not pending:
                # The first bytes after the region end a line that began inside it, unless
                # they start a record themselves.
                resumed = False
                if not chunk.startswith(b"{"):
                    cut = chunk.find(b"\n")
                    if cut < 0:
                        resumed = True
                        continue
                    chunk = chunk[cut + 1 :]
            lines = chunk.split(b"\n")
            if pending:  # joined to the first piece only: no copy of the whole chunk
                lines[0] = pending + lines[0]
            pending = lines.pop()
            # isspace() stops at the first non-blank byte: no copy per line, unlike strip().
            batch = [line for line in lines if line and not line.isspace()]
            if batch:
                self.n_lines += len(batch)
                yield batch
        # A trailing fragment after a damaged end is an incomplete line: its region stands for it.
        damaged_end = bool(self.damages) and self.damages[-1].end >= self.size
        if not damaged_end and pending and not pending.isspace():
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
