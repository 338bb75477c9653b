"""prefect.yaml for real: a Prefect server and a process worker started by the test, the
deployments created with `prefect deploy --all`, one run of the build on the demo web."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("prefect server did not become healthy")


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home}/prefect.db",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        WEBTEXT_HOME=str(REPO),
    )
    prefect = str(Path(sys.executable).with_name("prefect"))
    server = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = None
    try:
        _wait_healthy(api, server)
        subprocess.run(
            [prefect, "work-pool", "create", "webtext", "--type", "process"],
            env=env,
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        deploy = subprocess.run(
            [prefect, "--no-prompt", "deploy", "--all"],
            env=env,
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
        )
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        worker = subprocess.Popen(
            [prefect, "worker", "start", "--pool", "webtext", "--limit", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        yield env, prefect
    finally:
        for proc in (worker, server):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def _client_call(env: dict[str, str], code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_monthly_deployment_is_scheduled(prefect_server):
    env, _ = prefect_server
    info = _client_call(
        env,
        """
import asyncio, json
from prefect.client.orchestration import get_client
async def main():
    async with get_client() as c:
        d = await c.read_deployment_by_name("build-corpus/webtext-monthly")
        print(json.dumps({"crons": [s.schedule.cron for s in d.schedules],
                          "pool": d.work_pool_name, "entry": d.entrypoint,
                          "params": d.parameters}))
asyncio.run(main())
""",
    )
    assert info == {
        "crons": ["0 6 3 * *"],
        "pool": "webtext",
        "entry": "flows/build.py:build_corpus",
        "params": {"config_path": "configs/monthly.yaml"},
    }


def test_deployment_run_builds_the_demo(prefect_server, tmp_path):
    import demo as demo_web

    env, _ = prefect_server
    web = demo_web.generate(tmp_path, seed=0)
    with demo_web.serve(web) as proxy_url:
        cfg = demo_web.demo_config(tmp_path, web, proxy_url)
        cfg["crawl"].pop("proxy", None)
        config_path = tmp_path / "config.yaml"
        config_path.write_text(yaml.safe_dump(cfg))
        params = {"config_path": str(config_path), "overrides": {"crawl.proxy": proxy_url}}
        info = _client_call(
            env,
            f"""
import json
from prefect.deployments import run_deployment
run = run_deployment("build-corpus/webtext-build", parameters={params!r}, timeout=800)
print(json.dumps({{"state": run.state.type.value}}))
""",
        )
    assert info["state"] == "COMPLETED"
    funnel = json.loads((tmp_path / "funnel.json").read_text())
    assert funnel["shards"]["out"] == web.expected["shards"]
    assert (tmp_path / "shards" / "manifest.json").is_file()
