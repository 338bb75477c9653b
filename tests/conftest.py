"""Shared test setup: the real data folder, an offline tiktoken cache, a local PREFECT_HOME."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WEBTEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
RANKS_FILE = SHARED_DATA / "tokenizer" / "r50k_base.tiktoken"


def _seed_tiktoken_cache() -> None:
    from pipeline.core.tokenizer import cache_key

    cache = REPO / ".cache" / "tiktoken"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / cache_key()
    if not target.exists() and RANKS_FILE.exists():
        shutil.copyfile(RANKS_FILE, target)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))


os.environ.setdefault("PREFECT_HOME", str(REPO / ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
_seed_tiktoken_cache()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder not found: {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory, prefect_harness):
    """The demo built once per session: (build folder, flow result, the regenerated web).
    Tests that change the build restore it (see test_e2e_demo's rerun test)."""
    import demo as demo_web
    from pipeline.cli import run_demo

    out = tmp_path_factory.mktemp("demo")
    result = run_demo(out)
    web = demo_web.generate(tmp_path_factory.mktemp("regen"))  # same seed, same web
    return out, result, web
