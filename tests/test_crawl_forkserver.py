"""The crawl fork server (pipeline/crawl/forkserver.py): children behave like cold crawl
subprocesses (exit codes, signals, logs, the same crawl), and nothing outlives the driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.crawl.forkserver import get_server
from pipeline.crawl.journal import journal_path
from tests.crawl_server import CrawlServer, plain_site
from tests.test_crawl import fast_cfg, fetch_rows, wait_for_journal, write_links

REPO = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_child_exit_code_log_and_signal(tmp_path):
    server = get_server()
    assert server is not None
    log = tmp_path / "child.log"
    bad = server.spawn(["--no-such-flag"], str(log))
    assert bad.wait(timeout=30) == 2  # argparse's usage error, as `python -m pipeline.crawl`
    assert "usage: python -m pipeline.crawl" in log.read_text()
    # The same server serves the next part; a signal reaches the child, not the server.
    links = write_links(tmp_path / "links" / "part-00000.parquet", ["http://x.invalid/"])
    again = server.spawn(
        ["--links", str(links), "--root", str(tmp_path), "--part", "p", "--config", "/nonexistent"],
        str(log),
    )
    assert again.wait(timeout=30) == 1  # the missing config: a traceback in the log
    assert "FileNotFoundError" in log.read_text()
    assert server.alive and _alive(server.pid)


def test_forked_and_cold_crawls_write_the_same_rows(tmp_path):
    web = CrawlServer([plain_site(6), plain_site(4)]).start()
    try:
        from pipeline.crawl import run_part

        urls = [web.url(0, f"/page{i}.html") for i in range(6)]
        urls += [web.url(1, f"/page{i}.html") for i in range(4)] + [web.url(1, "/missing")]
        rows = {}
        for fork in (True, False):
            root = tmp_path / str(fork)
            links = write_links(root / "links" / "part-00000.parquet", urls)
            run_part(links, root, fast_cfg(fork_server=fork))
            rows[fork] = {
                u: (r["status"], r["error"], r["bytes"]) for u, r in fetch_rows(root).items()
            }
        assert rows[True] == rows[False] and len(rows[True]) == len(urls)
    finally:
        web.stop()


def test_server_and_children_die_with_the_driver(tmp_path):
    """A driver killed outright (SIGKILL, no cleanup) takes its fork server and the server's
    crawl child with it: no orphan keeps writing into a part that a rerun crawls again."""
    from tests.test_crawl_hosts import slow_site

    web = CrawlServer([slow_site(200, 0.2)]).start()
    try:
        urls = [web.url(0, f"/p/{i}.html") for i in range(200)]
        links = write_links(tmp_path / "links" / "part-00000.parquet", urls)
        cfg = fast_cfg(concurrent_per_domain=1)
        (tmp_path / "cfg.json").write_text(cfg.model_dump_json())
        script = (
            "import sys, time\n"
            "from pathlib import Path\n"
            "from pipeline.core.config import CrawlConfig\n"
            "from pipeline.crawl import crawl_subprocess\n"
            "from pipeline.crawl.forkserver import get_server\n"
            "cfg = CrawlConfig.model_validate_json(Path(sys.argv[3]).read_text())\n"
            "p = crawl_subprocess(Path(sys.argv[1]), Path(sys.argv[2]), 'part-00000', cfg)\n"
            "print(get_server().pid, p.pid, flush=True)\n"
            "time.sleep(600)\n"
        )
        driver = subprocess.Popen(
            [sys.executable, "-c", script, str(links), str(tmp_path), str(tmp_path / "cfg.json")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert driver.stdout is not None
        server_pid, child_pid = map(int, driver.stdout.readline().split())
        jpath = journal_path(tmp_path, "part-00000")
        assert wait_for_journal(jpath, 2), "the crawl child never got going"
        assert _alive(server_pid) and _alive(child_pid)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 20
        while (_alive(server_pid) or _alive(child_pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(server_pid) and not _alive(child_pid)
    finally:
        web.stop()
