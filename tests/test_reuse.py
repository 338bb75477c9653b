"""The one reuse rule (pipeline.core.reuse) and the done-marker contract built on it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.core import reuse
from pipeline.core.ledger import StageStats
from pipeline.core.stage import run_marked


def _counting_hash(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = reuse.sha256_file

    def counting(path: Path) -> str:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(reuse, "sha256_file", counting)
    return calls


def test_unchanged_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc" * 100)
    rec = reuse.file_record(p)
    calls = _counting_hash(monkeypatch)
    assert reuse.unchanged(p, rec) and calls == []  # size + mtime match: not read
    os.utime(p, ns=(rec["mtime_ns"] + 10**9, rec["mtime_ns"] + 10**9))
    assert reuse.unchanged(p, rec) and calls == [p]  # touched, same bytes: hashed, same
    p.write_bytes(b"abd" * 100)
    assert not reuse.unchanged(p, rec)
    # Same size and a restored mtime fool the cheap check; --verify does not trust it.
    os.utime(p, ns=(rec["mtime_ns"], rec["mtime_ns"]))
    assert reuse.unchanged(p, rec)
    monkeypatch.setenv("WEBTEXT_VERIFY", "1")
    assert not reuse.unchanged(p, rec)
    p.unlink()
    assert not reuse.unchanged(p, rec) and not reuse.unchanged(p, None)


def test_file_record_takes_over_the_earlier_hash_only_when_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"x" * 10)
    rec = reuse.file_record(p)
    calls = _counting_hash(monkeypatch)
    assert reuse.file_record(p, rec) == rec and calls == []
    forged = {**rec, "sha256": "0" * 64}
    p.write_bytes(b"y" * 11)
    assert reuse.file_record(p, forged)["sha256"] != forged["sha256"] and calls == [p]


def _step(tmp_path: Path, counter: list[int]):
    src = tmp_path / "in.txt"
    out = tmp_path / "out" / "part-00000.txt"

    def work() -> StageStats:
        counter.append(1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(src.read_text().upper())
        return StageStats("filter", "part-00000", 1, 1, outputs=["out/part-00000.txt"])

    return src, out, work


def test_run_marked_reruns_exactly_when_something_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    src, out, work = _step(tmp_path, runs)
    src.write_text("hello")

    def go(cfg: str = "c1", version: int = 1) -> StageStats:
        return run_marked(tmp_path, "filter", "part-00000", [src], cfg, version, work)

    go()
    marker = json.loads((tmp_path / "_done/filter/part-00000.json").read_text())
    assert set(marker["inputs"]) == {"in.txt"} and set(marker["outputs"]) == {"out/part-00000.txt"}
    assert marker["outputs"]["out/part-00000.txt"]["size"] == 5

    calls = _counting_hash(monkeypatch)
    assert go().extra.get("skipped") is True and len(runs) == 1
    assert calls == [], "a no-op rerun must not read inputs or outputs"

    os.utime(src, ns=(1, 1))  # touched, same bytes: still skipped (hashed once)
    assert go().extra.get("skipped") is True and len(runs) == 1

    src.write_text("world")
    assert not go().extra.get("skipped") and len(runs) == 2 and out.read_text() == "WORLD"
    out.write_text("tampered")
    assert not go().extra.get("skipped") and len(runs) == 3 and out.read_text() == "WORLD"
    out.unlink()
    assert not go().extra.get("skipped") and len(runs) == 4
    assert not go(cfg="c2").extra.get("skipped") and len(runs) == 5
    assert not go(cfg="c2", version=2).extra.get("skipped") and len(runs) == 6
    assert go(cfg="c2", version=2).extra.get("skipped") is True and len(runs) == 6


def test_markers_of_the_earlier_layout_are_read(tmp_path: Path) -> None:
    """A marker written before file records ({path: sha256}) skips when the files match,
    after hashing them once, instead of redoing the part (a crawl would refetch the web)."""
    runs: list[int] = []
    src, _out, work = _step(tmp_path, runs)
    src.write_text("hello")
    run_marked(tmp_path, "filter", "part-00000", [src], "c", 1, work)
    mpath = tmp_path / "_done/filter/part-00000.json"
    new = json.loads(mpath.read_text())
    old = {
        "config": "c",
        "version": 1,
        "inputs": {k: v["sha256"] for k, v in new["inputs"].items()},
        "output_sha256": {k: v["sha256"] for k, v in new["outputs"].items()},
        "stats": new["stats"],
    }
    mpath.write_text(json.dumps(old))
    assert run_marked(tmp_path, "filter", "part-00000", [src], "c", 1, work).extra["skipped"]
    assert len(runs) == 1
    earlier, why = reuse.earlier_run(tmp_path, "filter", "part-00000", "c", 1)
    assert why == "" and earlier is not None and earlier.changed_outputs() == []


def test_earlier_run_says_why_not(tmp_path: Path) -> None:
    runs: list[int] = []
    src, _, work = _step(tmp_path, runs)
    src.write_text("x")
    assert reuse.earlier_run(tmp_path, "filter", "part-00000", "c", 1) == (None, "no earlier run")
    run_marked(tmp_path, "filter", "part-00000", [src], "c", 1, work)
    assert reuse.earlier_run(tmp_path, "filter", "part-00000", "d", 1)[1] == "filter config changed"
    assert reuse.earlier_run(tmp_path, "filter", "part-00000", "c", 2)[1] == "stage version 1 != 2"
    (tmp_path / "_done/filter/part-00000.json").write_text("{not json")
    assert (
        reuse.earlier_run(tmp_path, "filter", "part-00000", "c", 1)[1] == "done marker unreadable"
    )
