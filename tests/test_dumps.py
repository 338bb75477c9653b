"""Dump readers: every container, several frames/streams, 2^31 windows, damaged files."""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import json
import lzma
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard

from pipeline import harvest
from pipeline.core.config import HarvestConfig
from pipeline.core.errors import ConfigError
from pipeline.harvest.dumps import DumpReader, detect_format, expand_inputs

LINES = [json.dumps({"id": f"x{i}", "n": i, "pad": "y" * (i % 50)}).encode() for i in range(3000)]
DATA = b"\n".join(LINES) + b"\n"


def _compress(fmt: str, data: bytes) -> bytes:
    if fmt == "zst":
        c = zstandard.ZstdCompressor(level=3)
        third = len(data) // 3
        return (
            c.compress(data[:third])
            + c.compress(data[third : 2 * third])
            + c.compress(data[2 * third :])
        )  # frames cut mid-line: lines span frames
    if fmt == "xz":
        half = len(data) // 2
        return lzma.compress(data[:half]) + lzma.compress(data[half:])  # two streams
    if fmt == "bz2":
        half = len(data) // 2
        return bz2.compress(data[:half]) + bz2.compress(data[half:])
    if fmt == "gz":
        half = len(data) // 2
        return gzip.compress(data[:half], mtime=0) + gzip.compress(data[half:], mtime=0)
    return data


def _independent_prefix(fmt: str, blob: bytes) -> bytes:
    """What the reference decoders return before they stop (stdlib / zstandard readers)."""
    out = io.BytesIO()
    if fmt == "zst":
        reader = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(
            io.BytesIO(blob), read_across_frames=True
        )
    else:
        opener = {"xz": lzma.open, "bz2": bz2.open, "gz": gzip.open}[fmt]
        reader = opener(io.BytesIO(blob))
    try:
        while chunk := reader.read(4096):
            out.write(chunk)
    except (EOFError, OSError, lzma.LZMAError, zstandard.ZstdError):
        pass
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["zst", "xz", "bz2", "gz", "plain"])
def test_all_formats_multi_frame(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"dump.{fmt}"
    path.write_bytes(_compress(fmt, DATA))
    reader = DumpReader(path, chunk_size=4096)
    assert list(reader) == LINES
    assert reader.damage is None and reader.format == fmt and detect_format(path) == fmt


def test_blank_lines_crlf_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "d.ndjson"
    path.write_bytes(b'{"a":1}\r\n\n   \n{"a":2}\n{"a":3}')
    assert [line.strip() for line in DumpReader(path)] == [b'{"a":1}', b'{"a":2}', b'{"a":3}']


def test_real_zst_needs_2gib_window(shared_data: Path) -> None:
    path = shared_data / "reddit" / "RS_v2_2005-06.zst"
    with pytest.raises(zstandard.ZstdError):  # the default window limit refuses these files
        zstandard.ZstdDecompressor().decompress(path.read_bytes())
    lines = list(DumpReader(path))
    assert (
        lines
        == lzma.decompress((shared_data / "reddit" / "RS_v2_2005-06.xz").read_bytes()).splitlines()
    )
    assert len(lines) == 103


@pytest.mark.parametrize("fmt", ["zst", "xz", "bz2", "gz"])
@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_file_keeps_lines_before_damage(tmp_path: Path, fmt: str, damage: str) -> None:
    blob = bytearray(_compress(fmt, DATA))
    if damage == "truncated":
        blob = blob[: int(len(blob) * 0.6)]
    else:
        mid = int(len(blob) * 0.6)
        blob[mid : mid + 64] = bytes(b ^ 0x5A for b in blob[mid : mid + 64])
    path = tmp_path / f"bad.{fmt}"
    path.write_bytes(bytes(blob))
    reader = DumpReader(path, chunk_size=4096)
    got = list(reader)
    assert reader.damage is not None
    assert reader.damage.path == str(path)
    assert 0 <= reader.damage.offset <= len(blob)
    assert str(path) in reader.damage.detail() and "offset" in reader.damage.detail()
    reference = _independent_prefix(fmt, bytes(blob)).split(b"\n")[:-1]  # complete lines
    if damage == "truncated":
        # Everything decoded is genuine, and at least as much as the reference decoder gives.
        assert got == LINES[: len(got)]
        assert len(reference) <= len(got) < len(LINES)
        assert reader.damage.offset == len(blob)
    else:
        # Formats without per-block checks (gzip, xz before its block CRC) may decode some
        # garbage before noticing; those lines become bad_json rows. The start is intact.
        assert got[:1000] == LINES[:1000]
        assert reference[:1000] == LINES[:1000]


def test_truncated_real_dump_fails_nothing_else(shared_data: Path, tmp_path: Path) -> None:
    real = shared_data / "reddit" / "RS_v2_2005-07.zst"
    blob = real.read_bytes()
    bad = tmp_path / "in" / "RS_v2_2005-07.zst"
    bad.parent.mkdir()
    bad.write_bytes(blob[: len(blob) // 2])
    kept = _independent_prefix("zst", blob[: len(blob) // 2]).split(b"\n")[:-1]
    assert 0 < len(kept) < 1079
    good = shared_data / "reddit" / "RS_v2_2005-06.xz"
    cfg = HarvestConfig(n_parts=2)
    stats = harvest.run([str(bad), str(good)], tmp_path / "out", cfg)
    total = harvest.summarize(stats)
    # 103 good lines + the lines decoded before the damage + 1 item for the damage itself.
    assert total["in"] == 103 + len(kept) + 1
    assert total["dropped"]["corrupt_file"] == 1
    rows = []
    for p in sorted((tmp_path / "out" / "ledger" / "harvest").glob("*.parquet")):
        rows += [r for r in pq.read_table(p).to_pylist() if r["reason"] == "corrupt_file"]
    assert len(rows) == 1
    assert rows[0]["key"] == "RS_v2_2005-07.zst"
    assert str(bad) in rows[0]["detail"] and f"offset {len(blob) // 2}" in rows[0]["detail"]
    # The good file is complete: its 83 qualifying posts are all links.
    posts = [json.loads(line) for line in lzma.decompress(good.read_bytes()).splitlines()]
    good_ids = {p["id"] for p in posts if p["score"] >= 3}
    link_ids = set()
    for p in harvest.links_parts(tmp_path / "out", cfg):
        link_ids |= {i for ids in pq.read_table(p).column("post_ids").to_pylist() for i in ids}
    assert good_ids <= link_ids


def test_expand_inputs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    for name in ("RS_2005-06.zst", "RS_2005-07.xz", "README.md", ".hidden.zst", "x.ndjson"):
        (tmp_path / "a" / name).write_bytes(b"")
    got = [p.name for p in expand_inputs([str(tmp_path / "a")])]
    assert got == ["RS_2005-06.zst", "RS_2005-07.xz", "x.ndjson"]
    assert [p.name for p in expand_inputs([str(tmp_path / "a" / "RS_*")])] == [
        "RS_2005-06.zst",
        "RS_2005-07.xz",
    ]
    with pytest.raises(ConfigError):
        expand_inputs([str(tmp_path / "nope")])


def _framed(data: bytes, cuts: list[int]) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    """zst frames of data[cuts[i]:cuts[i+1]]: the blob and, per frame, its compressed and
    decompressed byte ranges."""
    cctx = zstandard.ZstdCompressor(level=3, write_checksum=True)
    blob = b""
    frames = []
    for a, b in itertools.pairwise(cuts):
        frame = cctx.compress(data[a:b])
        frames.append((len(blob), len(blob) + len(frame), a, b))
        blob += frame
    return blob, frames


def _surviving(data: bytes, lost: tuple[int, int]) -> list[bytes]:
    """Lines that lie wholly outside the lost decompressed range [a, b): the independent count
    of what a reader that skips one frame can give back."""
    a, b = lost
    out, start = [], 0
    for line in data.split(b"\n")[:-1]:
        end = start + len(line)  # the newline sits at `end`
        if end < a or start >= b:
            out.append(line)
        start = end + 1
    return out


@pytest.mark.parametrize("aligned", [True, False])
def test_one_damaged_frame_costs_only_its_lines(
    shared_data: Path, tmp_path: Path, aligned: bool
) -> None:
    """Must-show (issue 10): a 12-frame dump of real records with frame 6 damaged loses only
    what frame 6 held (frames cut at line ends, or anywhere), and the harvest records one
    corrupt_file row with the byte range."""
    data = (
        zstandard.ZstdDecompressor(max_window_size=2**31)
        .decompressobj()
        .decompress((shared_data / "reddit" / "RS_v2_2005-07.zst").read_bytes())
    )
    lines = data.split(b"\n")[:-1]
    assert len(lines) == 1079
    if aligned:
        ends = [i for i, c in enumerate(data) if c == 0x0A]
        cuts = [0] + [ends[len(ends) * k // 12] + 1 for k in range(1, 12)] + [len(data)]
    else:
        cuts = [len(data) * k // 12 for k in range(12)] + [len(data)]
    blob, frames = _framed(data, cuts)
    c0, c1, d0, d1 = frames[5]  # the 6th frame
    bad = bytearray(blob)
    mid = (c0 + c1) // 2
    bad[mid : mid + 32] = bytes(x ^ 0x5A for x in bad[mid : mid + 32])
    path = tmp_path / "in" / "RS_v2_2005-07.zst"
    path.parent.mkdir()
    path.write_bytes(bytes(bad))
    # Independent check of the construction: every other frame decodes on its own.
    for k, (a, b, x, y) in enumerate(frames):
        if k != 5:
            assert zstandard.ZstdDecompressor().decompress(bytes(bad[a:b])) == data[x:y]
    want = _surviving(data, (d0, d1))
    if aligned:
        assert len(want) == len(lines) - data[d0:d1].count(b"\n")
    reader = DumpReader(path, chunk_size=4096)
    got = list(reader)
    assert got == want
    assert len(reader.damages) == 1
    dmg = reader.damages[0]
    assert (dmg.start, dmg.end) == (c0, c1)
    assert f"bytes {c0}-{c1} lost" in dmg.detail()

    stats = harvest.run([str(path)], tmp_path / "out", HarvestConfig(n_parts=2))
    total = harvest.summarize(stats)
    assert total["in"] == len(want) + 1  # every surviving line, and one item for the region
    assert total["dropped"]["corrupt_file"] == 1


def test_damage_runs_to_the_end_of_a_truncated_framed_dump(tmp_path: Path) -> None:
    """Damage in frame 2 of 4 and a truncated last frame: two regions, the good frames kept."""
    cuts = [0, 30_000, 60_000, 90_000, len(DATA)]
    cuts = [DATA.rfind(b"\n", 0, c) + 1 if 0 < c < len(DATA) else c for c in cuts]
    blob, frames = _framed(DATA, cuts)
    bad = bytearray(blob[: frames[3][0] + (frames[3][1] - frames[3][0]) // 2])
    c0, c1 = frames[1][:2]
    bad[(c0 + c1) // 2] ^= 0xFF
    path = tmp_path / "bad.zst"
    path.write_bytes(bytes(bad))
    reader = DumpReader(path, chunk_size=4096)
    got = list(reader)
    keep = DATA[cuts[0] : cuts[1]] + DATA[cuts[2] : cuts[3]]
    assert got == keep.split(b"\n")[:-1]
    assert [(d.start, d.end) for d in reader.damages] == [(c0, c1), (frames[3][0], len(bad))]
