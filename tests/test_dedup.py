"""Dedup stage end to end: drops, ledger, markers, determinism, incremental builds."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import dedup
from pipeline.core.config import CorpusConfig, DedupConfig
from pipeline.core.io import sha256_file
from pipeline.core.ledger import STAGES
from tests.test_dedup_helpers import BOILERPLATE, doc_row, edit, gold_bodies, write_part


@pytest.fixture(scope="module")
def bodies(shared_data: Path) -> list[str]:
    return gold_bodies(shared_data)


def _ledger(root: Path, part: str) -> list[tuple[str, str, str]]:
    rows = pq.read_table(root / "ledger" / "dedup" / f"{part}.parquet").to_pylist()
    return [(r["key"], r["reason"], r["detail"]) for r in rows]


def _build_parts(root: Path, bodies: list[str]) -> list[Path]:
    """Part 0: originals o00..o19. Part 1: an exact copy, near copies with more karma or
    earlier dates, a far edit, unrelated docs."""
    t0 = datetime(2017, 1, 1, tzinfo=UTC)
    early = datetime(2016, 1, 1, tzinfo=UTC)
    p0 = [doc_row(f"o{i:02d}", bodies[i], karma=10) for i in range(20)]
    long_tail = " ".join(bodies[2].split()[: len(bodies[2].split()) // 3])
    p1 = [
        doc_row("x-exact", bodies[0].upper() + " !!!", karma=10),  # same normalized text
        doc_row("x-karma", bodies[1] + "\nShare this article.", karma=50),  # near, wins
        doc_row("x-third", long_tail, karma=99),  # J ~ 0.33: not a duplicate
        doc_row("x-early", bodies[3] + "\nRead more.", karma=10, first_seen=early),  # wins
        doc_row("x-late", bodies[4] + "\nRead more.", karma=10),  # same karma, same date: id
        doc_row("a-small", bodies[5] + "\nRead more.", karma=10, first_seen=t0),  # smaller id
    ] + [doc_row(f"u{i:02d}", bodies[40 + i], karma=1) for i in range(5)]
    return [
        write_part(root / "filter" / "part-00000.parquet", p0),
        write_part(root / "filter" / "part-00001.parquet", p1),
    ]


def test_run_drops_duplicates_with_winner_rule(tmp_path: Path, bodies: list[str]) -> None:
    parts = _build_parts(tmp_path, bodies)
    stats = dedup.run(parts, tmp_path, CorpusConfig())
    assert [(s.stage, s.part, s.n_in, s.n_out, dict(s.dropped)) for s in stats] == [
        ("dedup", "part-00000", 20, 17, {"near_duplicate": 3}),
        ("dedup", "part-00001", 11, 9, {"exact_duplicate": 1, "near_duplicate": 1}),
    ]
    assert _ledger(tmp_path, "part-00000") == [
        ("o01", "near_duplicate", "x-karma"),
        ("o03", "near_duplicate", "x-early"),
        ("o05", "near_duplicate", "a-small"),
    ]
    assert _ledger(tmp_path, "part-00001") == [
        ("x-exact", "exact_duplicate", "o00"),
        ("x-late", "near_duplicate", "o04"),
    ]
    kept1 = pq.read_table(tmp_path / "dedup" / "part-00001.parquet")
    assert kept1.column("id").to_pylist() == [
        "x-karma",
        "x-third",
        "x-early",
        "a-small",
        "u00",
        "u01",
        "u02",
        "u03",
        "u04",
    ]
    sig = pq.read_table(tmp_path / "dedup" / "signatures" / "part-00000.parquet")
    assert sig.num_rows == 20 and len(sig.column("signature")[0]) == 128
    assert "dedup_signatures" not in STAGES


def test_rerun_skips_and_deleted_part_is_redone_identically(
    tmp_path: Path, bodies: list[str]
) -> None:
    parts = _build_parts(tmp_path, bodies)
    dedup.run(parts, tmp_path, CorpusConfig())
    out = tmp_path / "dedup" / "part-00001.parquet"
    led = tmp_path / "ledger" / "dedup" / "part-00001.parquet"
    before = (sha256_file(out), sha256_file(led))
    again = dedup.run(parts, tmp_path, CorpusConfig())
    assert all(s.extra.get("skipped") for s in again)
    out.unlink()
    third = dedup.run(parts, tmp_path, CorpusConfig())
    assert [bool(s.extra.get("skipped")) for s in third] == [True, False]
    assert (sha256_file(out), sha256_file(led)) == before


def test_threshold_change_reuses_signatures(tmp_path: Path, bodies: list[str]) -> None:
    parts = _build_parts(tmp_path, bodies)
    dedup.run(parts, tmp_path, CorpusConfig())
    sig = tmp_path / "_done" / "dedup_signatures" / "part-00000.json"
    mtime = sig.stat().st_mtime_ns
    cfg = CorpusConfig(dedup=DedupConfig(threshold=0.95))
    stats = dedup.run(parts, tmp_path, cfg)
    assert sig.stat().st_mtime_ns == mtime
    assert not any(s.extra.get("skipped") for s in stats)


def test_order_does_not_change_kept_set(tmp_path: Path, bodies: list[str]) -> None:
    rng = random.Random(7)
    rows = [doc_row(f"d{i:03d}", b, karma=rng.randint(3, 6)) for i, b in enumerate(bodies[:60])]
    rows += [
        doc_row(f"e{i:03d}", edit(bodies[i], rng)[1], karma=rng.randint(3, 6)) for i in range(30)
    ]
    results = []
    for trial in range(3):
        shuffled = rows[:]
        random.Random(trial).shuffle(shuffled)
        root = tmp_path / f"t{trial}"
        n_parts = 2 + trial
        parts = [
            write_part(root / "filter" / f"part-{k:05d}.parquet", shuffled[k::n_parts])
            for k in range(n_parts)
        ]
        dedup.run(parts, root, CorpusConfig())
        kept = set()
        drops = set()
        for k in range(n_parts):
            kept |= set(
                pq.read_table(root / "dedup" / f"part-{k:05d}.parquet").column("id").to_pylist()
            )
            drops |= set(_ledger(root, f"part-{k:05d}"))
        results.append((kept, drops))
    assert results[0] == results[1] == results[2]
    assert len(results[0][1]) >= 20


def test_cluster_plain_texts(bodies: list[str]) -> None:
    texts = {
        "b": bodies[0],
        "a": bodies[0] + "\nSubscribe to our newsletter.",
        "c": bodies[0].replace(".", "!"),
        "z": bodies[1],
        "y": bodies[2],
    }
    assert dedup.cluster(texts) == {"b": "a", "c": "a"}
    assert dedup.cluster({"p": "", "q": ""}) == {"q": "p"}
    assert dedup.cluster({}) == {}


def test_incremental_build_uses_only_signatures_of_build_one(
    tmp_path: Path, bodies: list[str]
) -> None:
    b1, b2 = tmp_path / "build1", tmp_path / "build2"
    # Build 1: 30 originals plus one near copy of o00 that build 1 itself drops.
    rows1 = [doc_row(f"o{i:02d}", bodies[i], karma=3) for i in range(30)]
    rows1.append(doc_row("p-copy", bodies[0] + "\nRead more.", karma=3))
    p1 = write_part(b1 / "filter" / "part-00000.parquet", rows1)
    dedup.run([p1], b1, CorpusConfig())
    assert _ledger(b1, "part-00000") == [("p-copy", "near_duplicate", "o00")]
    # Nothing of build 1 with text survives: build 2 can only use its signatures.
    for p in [*(b1 / "filter").glob("*.parquet"), *(b1 / "dedup").glob("part-*.parquet")]:
        p.unlink()
    # Build 2: near copies of build-1 documents (with more karma: published ones still win),
    # an exact copy, and new documents, two of which duplicate each other.
    copies = {
        f"n{i:02d}": BOILERPLATE[i % 4] + "\n" + bodies[i].replace(" the ", " a ", 3)
        for i in (1, 2, 5, 8)
    }
    rows2 = [doc_row(k, t, karma=100) for k, t in copies.items()]
    rows2.append(doc_row("n-exact", bodies[9], karma=100))
    rows2 += [doc_row(f"new{i:02d}", bodies[50 + i], karma=5) for i in range(10)]
    rows2.append(doc_row("new-dup", bodies[50] + "\nShare this.", karma=1))
    p2 = write_part(b2 / "filter" / "part-00000.parquet", rows2)
    cfg = CorpusConfig(dedup=DedupConfig(reference_roots=[str(b1)]))
    (stats,) = dedup.run([p2], b2, cfg)
    assert _ledger(b2, "part-00000") == [
        ("n-exact", "exact_duplicate", "o09"),
        ("n01", "near_duplicate", "o01"),
        ("n02", "near_duplicate", "o02"),
        ("n05", "near_duplicate", "o05"),
        ("n08", "near_duplicate", "o08"),
        ("new-dup", "near_duplicate", "new00"),
    ]
    assert (stats.n_in, stats.n_out) == (16, 10)
    # Build 2 wrote signatures only for its own documents.
    assert pq.read_table(b2 / "dedup" / "signatures" / "part-00000.parquet").num_rows == 16


def test_out_of_core_driver_path_gives_same_ledgers(tmp_path: Path, bodies: list[str]) -> None:
    a, b = tmp_path / "mem", tmp_path / "disk"
    dedup.run(_build_parts(a, bodies), a, CorpusConfig())
    dedup.run(_build_parts(b, bodies), b, CorpusConfig(dedup=DedupConfig(spill_above=0)))
    for part in ("part-00000", "part-00001"):
        assert _ledger(a, part) == _ledger(b, part)
    assert not list((b / "dedup").glob("dedup-bands-*"))  # spill files cleaned up
