"""End to end: the whole flow on the demo web, under Prefect's test harness."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.ledger import STAGES
from pipeline.core.tokenizer import EOT_ID, get_encoding

pytestmark = pytest.mark.slow


def _marker_content(raw: bytes) -> bytes:
    """A done marker without the mtimes of its file records: a redone part rewrites its
    files with new mtimes by nature; hashes, sizes, config, version and stats must match."""
    marker = json.loads(raw)
    for section in ("inputs", "outputs"):
        for rec in marker.get(section, {}).values():
            rec.pop("mtime_ns", None)
    return json.dumps(marker, sort_keys=True).encode()


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every output file of a build (markers hold input hashes, so they are outputs too);
    not the records of a run (logs/, _progress/, report/: times and rates of this run)."""
    snap: dict[str, bytes] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if not p.is_file() or p.name == "config.yaml" or "/web/" in f"/{rel}":
            continue
        if rel.startswith(("logs/", "_progress/", "report/")):
            continue
        raw = p.read_bytes()
        snap[rel] = _marker_content(raw) if rel.startswith("_done/") else raw
    return snap


def test_outputs_exist_and_read_back(demo_build):
    out, result, _ = demo_build
    assert result["failures"] == []
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    assert (out / "funnel.json").is_file()
    assert (out / "shards" / "README.md").read_text().startswith("---\n")
    total = 0
    for entry in manifest["shards"]:
        table = pq.read_table(out / "shards" / entry["path"])
        assert table.num_rows == entry["rows"]
        assert table.schema.field("tokens").type.value_type == pa.uint16()
        total += table.num_rows
    assert total == manifest["totals"]["rows"] > 0
    assert manifest["totals"]["rows"] == result["funnel"]["shards"]["out"]
    assert (manifest["partial"], manifest["failed_parts"]) == (False, [])
    assert all("failed" not in row for row in result["funnel"].values())


def test_tokens_decode_to_text(demo_build):
    out, _, _ = demo_build
    enc = get_encoding()
    n = 0
    for path in sorted((out / "shards").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            assert row["tokens"][-1] == EOT_ID
            assert EOT_ID not in row["tokens"][:-1]
            assert enc.decode(row["tokens"][:-1]) == row["text"]
            assert row["n_tokens"] == len(row["tokens"])
            n += 1
    assert n > 0


def test_funnel_adds_up_and_traps_are_counted(demo_build):
    out, result, web = demo_build
    funnel = json.loads((out / "funnel.json").read_text())
    assert funnel == result["funnel"]
    for stage, row in funnel.items():
        assert row["in"] == row["out"] + sum(row["dropped"].values()), stage
    # each stage consumes exactly what the previous one produced
    order = ["harvest", "crawl", "extract", "filter", "dedup", "shards"]
    for prev, nxt in itertools.pairwise(order):
        assert funnel[nxt]["in"] == funnel[prev]["out"], (prev, nxt)
    stage_of = {
        "low_karma": "harvest",
        "self_post": "harvest",
        "blocked_domain": "harvest",
        "merged_duplicate": "harvest",
        "robots": "crawl",
        "archive_miss": "crawl",
        "archive_bad_content_type": "crawl",
        "bad_content_type": "crawl",
        "wrong_language": "filter",
        "wikipedia": "filter",
        "too_short": "filter",
        "exact_duplicate": "dedup",
        "near_duplicate": "dedup",
    }
    for reason, stage in stage_of.items():
        assert web.expected[reason] > 0, reason
        assert funnel[stage]["dropped"].get(reason, 0) == web.expected[reason], reason
    assert funnel["shards"]["out"] == web.expected["shards"]
    # Documents by source, from the crawl's kept pages to the shards.
    assert funnel["shards"]["by_source"] == web.expected_sources
    assert funnel["dedup"]["by_source"] == web.expected_sources
    sources = Counter(
        s
        for path in sorted((out / "shards").glob("*.parquet"))
        for s in pq.read_table(path, columns=["source"]).column("source").to_pylist()
    )
    assert dict(sources) == web.expected_sources


def test_datasets_reads_the_shards(demo_build):
    datasets = pytest.importorskip("datasets")
    out, result, _ = demo_build
    ds = datasets.load_dataset("parquet", data_dir=str(out / "shards"))
    assert sum(len(split) for split in ds.values()) == result["funnel"]["shards"]["out"]


def test_rerun_skips_and_part_redo_is_byte_identical(demo_build):
    from pipeline.cli import run_demo

    out, first, _ = demo_build
    before = _snapshot(out)
    again = run_demo(out)
    assert again["parts_run"] == 0
    assert again["parts_skipped"] == first["parts_run"] + first["parts_skipped"]
    assert _snapshot(out) == before

    docs = sorted((out / "docs").glob("part-*.parquet"))
    victim = next(p for p in docs if pq.read_metadata(p).num_rows > 0)
    victim.unlink()
    third = run_demo(out)
    assert third["parts_run"] == 1  # only the extract part whose output was deleted
    assert _snapshot(out) == before


def test_import_pipeline_loads_no_prefect():
    code = (
        "import sys, pipeline, pipeline.cli, pipeline.core.config, pipeline.core.stage, pipeline.shards\n"
        "import pipeline.harvest, pipeline.crawl, pipeline.extract, pipeline.filter\n"
        "import pipeline.dedup, pipeline.shards.loader\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'prefect')\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_export_bin_matches_shards(demo_build, tmp_path):
    import numpy as np

    from pipeline.shards.export import export_bin
    from pipeline.shards.loader import iter_blocks

    out, _, _ = demo_build
    written = export_bin(out / "shards", tmp_path)
    train = np.fromfile(tmp_path / "train.bin", dtype=np.uint16)
    assert train.size == written["train"]
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    assert train.size == manifest["totals"]["train_tokens"]
    assert int((train == EOT_ID).sum()) == manifest["totals"]["train_rows"]
    blocks = list(iter_blocks(out / "shards", 64))
    assert len(blocks) == train.size // 64
    assert np.array_equal(np.concatenate(blocks), train[: len(blocks) * 64])


def test_bad_config_fails_before_work(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"out_dir: {tmp_path / 'o'}\ncrawl:\n  max_redirects: lots\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "build", str(cfg)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "crawl.max_redirects" in proc.stderr
    assert not (tmp_path / "o").exists()
    cfg.write_text(f"out_dir: {tmp_path / 'o'}\nharvest:\n  inputs: [{tmp_path / 'nope'}]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "build", str(cfg)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "harvest input matches no file" in proc.stderr
    assert not (tmp_path / "o").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_dask_runner_builds_the_same_shards(demo_build, tmp_path):
    """The same flow on prefect-dask's DaskTaskRunner (a local cluster of 2 processes)."""
    pytest.importorskip("prefect_dask")
    from pipeline.cli import run_demo

    out, first, _ = demo_build
    result = run_demo(
        tmp_path / "dask", overrides={"runner.kind": "dask", "runner.dask_workers": 2}
    )
    assert result["failures"] == []
    assert result["funnel"] == first["funnel"]
    ours = {p.name: p.read_bytes() for p in (out / "shards").iterdir()}
    theirs = {p.name: p.read_bytes() for p in (tmp_path / "dask" / "shards").iterdir()}
    assert theirs == ours


def test_killed_build_resumes_to_the_same_shards(demo_build, tmp_path):
    """SIGKILL the whole `webtext demo` process group mid-crawl, run again: same shards."""
    import os
    import signal
    import time

    from pipeline.cli import run_demo

    out, _, _ = demo_build
    target = tmp_path / "killed"
    env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "demo", "--out", str(target)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    try:
        # Kill once the first crawl part is done and others are still running.
        while time.monotonic() < deadline and proc.poll() is None:
            if list((target / "_done" / "crawl").glob("*.json")):
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert list((target / "_done" / "crawl").glob("*.json")), "the build never got to crawl"
    assert not (target / "shards" / "manifest.json").exists()
    result = run_demo(target)
    assert result["failures"] == [] and result["parts_skipped"] >= 1
    ours = {p.name: p.read_bytes() for p in (out / "shards").iterdir()}
    theirs = {p.name: p.read_bytes() for p in (target / "shards").iterdir()}
    assert theirs == ours


def test_failed_part_is_reported_and_the_rest_is_built(prefect_harness, tmp_path):
    """A part that fails (here: its fetch log cannot be written) is reported at the end with
    exit code 1; the other parts still reach the funnel and the shards, published as partial:
    funnel.json lists the failed part under its stage with the links it held, and so does the
    manifest."""
    import typer

    from pipeline.cli import run_demo

    out = tmp_path / "broken"
    (out / "crawl" / "fetches" / "part-00001.parquet").mkdir(parents=True)
    with pytest.raises(typer.Exit) as exc:
        run_demo(out)
    assert exc.value.exit_code == 1
    funnel = json.loads((out / "funnel.json").read_text())
    links_1 = pq.read_metadata(out / "links" / "part-00001.parquet").num_rows
    assert links_1 > 0
    assert funnel["crawl"]["in"] == funnel["harvest"]["out"] - links_1
    for row in funnel.values():
        assert row["in"] == row["out"] + sum(row["dropped"].values())
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    assert 0 < manifest["totals"]["rows"] == funnel["shards"]["out"]
    assert not (out / "_done" / "crawl" / "part-00001.json").exists()
    [failed] = funnel["crawl"]["failed"]
    assert "Error" in failed["error"]  # the exception's type and message
    assert {k: failed[k] for k in ("part", "input", "rows")} == {
        "part": "part-00001",
        "input": "links/part-00001.parquet",
        "rows": links_1,
    }
    assert [k for k, row in funnel.items() if "failed" in row] == ["crawl"]
    assert manifest["partial"] is True
    assert manifest["failed_parts"] == [{"stage": "crawl", "part": "part-00001", "rows": links_1}]
    summary = json.loads((out / "report" / "summary.json").read_text())
    warned = [w for w in summary["warnings"] if "FAILED" in w]
    assert len(warned) == 1
    assert warned[0].startswith(f"crawl/part-00001 FAILED, {links_1} input rows not built: ")


def test_progress_artifacts_reach_100_percent(demo_build):
    """The flow publishes each stage's progress as a Prefect progress artifact."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    _, result, _ = demo_build
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(result["flow_run_id"])])
            )
        )
    progress = {a.key: a for a in arts if a.type == "progress"}
    assert set(progress) == {f"progress-demo-{s}" for s in STAGES}
    for art in progress.values():
        assert float(art.data) == 100.0, art
        assert "parts" in (art.description or "")
    # The funnel, the overlap audit, the report's key figures and the link to the page.
    others = {a.key: a.data for a in arts if a.type != "progress"}
    assert set(others) == {"funnel-demo", "overlap-demo", "report-demo", "report-link-demo"}
    assert "| demo | " in others["overlap-demo"]  # the evaluation-set overlap table
    page = (demo_build[0] / "report" / "index.html").resolve().as_uri()
    assert page in others["report-link-demo"]  # Prefect stores a link as markdown
    report_md = others["report-demo"]
    assert f"| documents | {result['funnel']['shards']['out']:,} |" in report_md
