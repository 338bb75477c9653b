"""A temporary Prefect API for one-off builds, whose server logs go to a file under the build.

Prefect's own ephemeral server shares the terminal: when it shuts down it can print ERROR lines
and tracebacks (`task_run_recorder - Error flushing events`, `CancelledError`) after a build
that succeeded. Here the same server (uvicorn on 127.0.0.1, SQLite under PREFECT_HOME) runs as
a subprocess whose output goes to BUILD/logs/prefect-server.log, and it is stopped after the
client has flushed its events and logs (atexit runs in reverse order of registration, and this
is registered before any Prefect client work starts). With an API already configured
(PREFECT_API_URL, a deployment run, a test harness) nothing is started.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import prefect
from prefect.settings import PREFECT_API_URL, temporary_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def temporary_api(log_path: Path, timeout: float = 60.0) -> Iterator[str | None]:
    """Yield the URL of a Prefect API for the block: the configured one, else a new local
    server (None when one was configured already)."""
    if PREFECT_API_URL.value():
        yield None
        return
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    logf = open(log_path, "ab")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(Path(prefect.__file__).parent.parent),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--lifespan",
            "on",
        ],
        env=env,
        stdout=logf,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    atexit.register(logf.close)
    atexit.register(_stop, proc)  # runs after the client's own atexit flushes
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the temporary Prefect server exited with {proc.returncode}; see {log_path}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"the temporary Prefect server did not start; see {log_path}")
        time.sleep(0.2)
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url
