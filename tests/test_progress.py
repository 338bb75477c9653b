"""Progress: the files parts publish, what readers make of them, and what a user sees."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.core import progress
from pipeline.core.ledger import StageStats
from pipeline.core.stage import run_marked
from pipeline.progress_view import ProgressView, describe

REPO = Path(__file__).resolve().parents[1]


def test_parts_and_items_add_up(tmp_path: Path) -> None:
    progress.write_plan(tmp_path, "crawl", ["part-00000", "part-00001", "part-00002"])
    a = progress.PartProgress(tmp_path, "crawl", "part-00000", total=10, interval=0)
    a.advance(4)
    b = progress.PartProgress(tmp_path, "crawl", "part-00001", total=5, interval=0)
    b.advance(5)
    b.finish()
    sp = progress.read_progress(tmp_path)["crawl"]
    # part-00002 has not started: its total is unknown, so the stage's is too.
    assert (sp.parts_total, sp.parts_done, sp.items_done, sp.items_total) == (3, 1, 9, None)
    progress.PartProgress(tmp_path, "crawl", "part-00002", total=7, interval=0)
    sp = progress.read_progress(tmp_path)["crawl"]
    assert (sp.parts_done, sp.items_done, sp.items_total) == (1, 9, 22)
    assert sp.rate is None or sp.rate >= 0
    assert describe(sp).startswith("crawl 1/3 parts, pages 9/22")
    assert set(progress.read_progress(tmp_path)) == {"crawl"}  # stages without a plan: none
    progress.clear(tmp_path)
    assert progress.read_progress(tmp_path) == {}


def test_throttled_writes_and_the_start_time_survives(tmp_path: Path) -> None:
    p = progress.PartProgress(tmp_path, "extract", "part-00000", total=100, interval=3600)
    started = json.loads(p.path.read_text())["started"]
    for _ in range(50):
        p.advance()
    assert json.loads(p.path.read_text())["done"] == 0  # within the interval: not rewritten
    again = progress.PartProgress(tmp_path, "extract", "part-00000", total=100)
    assert again.started == started  # a stage counting items inside a started part
    again.finish(100)
    rec = json.loads(p.path.read_text())
    assert rec["finished"] and rec["done"] == 100


def test_run_marked_reports_run_and_skipped_parts(tmp_path: Path) -> None:
    progress.write_plan(tmp_path, "filter", ["part-00000"])

    def work() -> StageStats:
        return StageStats("filter", "part-00000", 7, 7)

    run_marked(tmp_path, "filter", "part-00000", [], "c", 1, work)
    sp = progress.read_progress(tmp_path)["filter"]
    assert (sp.parts_done, sp.items_done, sp.items_total) == (1, 7, 7)
    progress.clear(tmp_path)
    progress.write_plan(tmp_path, "filter", ["part-00000"])
    assert run_marked(tmp_path, "filter", "part-00000", [], "c", 1, work).extra["skipped"]
    sp = progress.read_progress(tmp_path)["filter"]
    assert (sp.parts_done, sp.items_done) == (1, 7)


def test_without_a_tty_a_line_per_change(tmp_path: Path) -> None:
    out = io.StringIO()
    progress.write_plan(tmp_path, "extract", ["part-00000"])
    p = progress.PartProgress(tmp_path, "extract", "part-00000", total=4, interval=0)
    with ProgressView(tmp_path, tty=False, interval=0.05, stream=out):
        for _ in range(4):
            p.advance()
            time.sleep(0.2)
        p.finish()
        time.sleep(0.2)
    lines = [ln for ln in out.getvalue().splitlines() if "| progress |" in ln]
    done = [int(m.group(1)) for ln in lines if (m := re.search(r"pages (\d+)/4", ln))]
    assert done == sorted(done) and done[0] < 4 and done[-1] == 4, lines
    assert "extract 1/1 parts" in lines[-1]
    assert len(lines) == len(set(lines))  # nothing repeated while nothing moved


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        TERM="xterm-256color",
        COLUMNS="140",
    )
    # As a user runs it: not the test session's API or its quieter logging.
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_LOGGING_LEVEL", None)
    return env


def _run_in_pty(cmd: list[str], env: dict[str, str], timeout: float = 300) -> tuple[int, bytes]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    return proc.returncode, b"".join(chunks)


@pytest.mark.slow
def test_demo_under_a_terminal_draws_advancing_bars(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "pipeline.cli", "demo", "--out", str(out)]
    rc, raw = _run_in_pty(cmd, _env(tmp_path))
    text = raw.decode("utf-8", "replace")
    assert rc == 0, text[-3000:]
    assert "━" in text  # rich's bar
    crawl_states = re.findall(r"crawl\s+\S*\s+(\d)/4\s+parts", text)
    assert crawl_states[-1] == "4", crawl_states
    assert len(set(crawl_states)) >= 2, f"the crawl bar never moved: {crawl_states}"
    # Extract's pages: every page the crawl kept (live or from an archive), which the demo
    # designs to end in the shards, the filter's drops or dedup's (none in extract).
    from demo import generate

    web = generate(tmp_path / "design")
    n = web.expected["shards"] + sum(
        sum(web.expected_by_stage[s].values()) for s in ("filter", "dedup")
    )
    assert n == 207  # 200 live pages + 7 recovered from the fake archives
    pages = [int(k) for k in re.findall(rf"pages (\d+)/{n}", text)]
    assert pages and pages[-1] == n and min(pages) < n, pages
    # Prefect's INFO lines go to the build's log, not between the bars.
    assert "Task run" not in text
    assert "Finished in state Completed" in (out / "logs" / "build.log").read_text()
    assert "Traceback" not in text and "ERROR" not in text


@pytest.mark.slow
def test_successful_demo_and_build_print_no_error(tmp_path: Path) -> None:
    """As a user runs them, without a terminal: progress lines, no traceback, no ERROR."""
    import demo as demo_web

    env = _env(tmp_path)
    out = tmp_path / "demo"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "demo",
            "--out",
            str(out),
            "--progress-interval",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    both = run.stdout + run.stderr
    assert run.returncode == 0, both[-3000:]
    assert "| progress | shards 1/1 parts" in both
    assert "Traceback" not in both and "ERROR" not in both, both[-3000:]

    # `webtext build` of the demo's config, with the demo web served by this test.
    web = demo_web.generate(out, seed=0)
    with demo_web.serve(web) as proxy:
        build = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.cli",
                "build",
                str(out / "config.yaml"),
                "--set",
                f"crawl.proxy={proxy}",
                "--set",
                f"out_dir={tmp_path / 'build'}",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=300,
            check=False,
        )
    both = build.stdout + build.stderr
    assert build.returncode == 0, both[-3000:]
    assert json.loads((tmp_path / "build" / "funnel.json").read_text()) == json.loads(
        (out / "funnel.json").read_text()
    )
    assert "Traceback" not in both and "ERROR" not in both, both[-3000:]
