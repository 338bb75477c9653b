"""Every stage alone from the CLI (`webtext extract|filter|dedup|shards --out DIR`), over a
copy of the demo build: the same drivers as the flow, so the same bytes; parts found in the
input folder, so a docs part from elsewhere is filtered; clear errors without input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.io import read_table

pytestmark = pytest.mark.slow

# What each stage writes (relative to the build folder), and its done-marker steps.
OUTPUTS = {
    "extract": ["docs", "ledger/extract"],
    "filter": ["filtered", "ledger/filter"],
    "dedup": ["dedup", "ledger/dedup"],
    "shards": ["shards"],
}
STEPS = {
    "extract": ["extract"],
    "filter": ["filter"],
    "dedup": ["dedup", "dedup_signatures"],
    "shards": ["shards"],
}


def files_of(root: Path, stage: str) -> dict[str, bytes]:
    out = {}
    for folder in OUTPUTS[stage]:
        for p in sorted((root / folder).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def text(res: Any) -> str:
    """The command's output without whitespace (rich wraps long lines anywhere)."""
    return "".join(res.output.split())


@pytest.fixture
def build(demo_build, tmp_path):
    """A copy of the session's demo build (mtimes kept, so its done markers still match)."""
    src = demo_build[0]
    dst = tmp_path / "b"
    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_stages_alone_give_the_flows_bytes(build, demo_build):
    flow_out = demo_build[0]
    cfg = str(build / "config.yaml")
    for stage in OUTPUTS:
        assert files_of(build, stage), stage  # the flow wrote something to compare with
    # Delete every stage's outputs and markers, then run the stages one by one.
    for stage, folders in OUTPUTS.items():
        for folder in folders:
            shutil.rmtree(build / folder)
        for step in STEPS[stage]:
            shutil.rmtree(build / "_done" / step, ignore_errors=True)
    for stage in OUTPUTS:
        res = cli(stage, "--out", str(build), "--config", cfg)
        assert res.exit_code == 0, res.output
        assert files_of(build, stage) == files_of(flow_out, stage), stage
    # Rerun one stage alone after deleting its output: the same bytes again.
    shards_before = files_of(build, "shards")
    shutil.rmtree(build / "shards")
    assert cli("shards", "--out", str(build), "--config", cfg).exit_code == 0
    assert files_of(build, "shards") == shards_before
    # A second run finds every marker matching and changes nothing.
    docs = files_of(build, "extract")
    assert cli("extract", "--out", str(build), "--config", cfg).exit_code == 0
    assert files_of(build, "extract") == docs


def test_docs_part_from_elsewhere_is_filtered(build):
    cfg = str(build / "config.yaml")
    parts = sorted((build / "docs").glob("part-*.parquet"))
    src = max(parts, key=lambda p: pq.read_metadata(p).num_rows)
    n_docs = pq.read_metadata(src).num_rows
    assert n_docs > 0
    # A part made elsewhere (here: another build's bytes under a new part number).
    foreign = build / "docs" / "part-00090.parquet"
    shutil.copyfile(src, foreign)
    res = cli("filter", "--out", str(build), "--config", cfg)
    assert res.exit_code == 0, res.output
    kept = read_table(build / "filtered" / "part-00090.parquet")
    ledger = read_table(build / "ledger" / "filter" / "part-00090.parquet")
    assert kept.num_rows + ledger.num_rows == n_docs
    # Same documents, same thresholds: the same verdicts as the part they were copied from.
    twin = read_table(build / "filtered" / src.name)
    assert kept.column("id").to_pylist() == twin.column("id").to_pylist()
    funnel = json.loads((build / "funnel.json").read_text())
    markers = sorted(p.stem for p in (build / "_done" / "filter").glob("*.json"))
    assert "part-00090" in markers
    assert funnel["filter"]["in"] == sum(pq.read_metadata(p).num_rows for p in [*parts, foreign])


@pytest.mark.parametrize("stage", ["extract", "filter", "dedup", "shards"])
def test_missing_or_empty_input_is_a_clear_error(tmp_path, stage):
    from pipeline.cli import STAGE_INPUTS

    res = cli(stage, "--out", str(tmp_path))
    assert res.exit_code == 2
    folder = str(tmp_path / STAGE_INPUTS[stage])
    assert "doesnotexist" in text(res) and folder in text(res)
    (tmp_path / STAGE_INPUTS[stage]).mkdir(parents=True)
    res = cli(stage, "--out", str(tmp_path))
    assert res.exit_code == 2 and f"{folder}holdsnone" in text(res)
    assert not (tmp_path / "funnel.json").exists()


def test_a_failing_part_is_reported(build):
    """A fetches part without its links part: that part fails with a clear message (exit 1,
    listed in funnel.json with its rows); the other parts are extracted."""
    cfg = str(build / "config.yaml")
    fetches = sorted((build / "crawl" / "fetches").glob("part-*.parquet"))
    orphan = build / "crawl" / "fetches" / "part-00091.parquet"
    shutil.copyfile(fetches[0], orphan)
    res = cli("extract", "--out", str(build), "--config", cfg)
    assert res.exit_code == 1
    assert "extract/part-00091failed" in text(res)
    funnel = json.loads((build / "funnel.json").read_text())
    [failed] = funnel["extract"]["failed"]
    assert failed["part"] == "part-00091" and failed["input"] == "crawl/fetches/part-00091.parquet"
    assert failed["rows"] == pq.read_metadata(orphan).num_rows
    assert "links/part-00091.parquet is missing" in failed["error"]
    assert funnel["extract"]["in"] == sum(
        len([r for r in read_table(p, ["error"]).column("error").to_pylist() if r is None])
        for p in fetches
    )
