"""Arctic Shift API source: months with no dump yet, fetched as dump files before the harvest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from pipeline.core.config import parse_config
from pipeline.harvest.arctic_shift import MonthResult, fetch_configured


@task(name="arctic-shift")
def fetch_arctic_months(cfg_data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(dump files to harvest, failures). A month that cannot be fetched is a failure the build
    reports at the end; the harvest goes on with what exists, and the next run resumes it."""
    cfg = parse_config(cfg_data)
    results = fetch_configured(cfg.harvest, Path(cfg.out_dir))
    logger = get_run_logger()
    for r in results:
        logger.info("arctic shift %s: %s", r.month, describe(r))
    paths = [r.path for r in results if r.status in ("fetched", "cached", "has_dump") and r.path]
    failures = [f"arctic-shift/{r.month}: {r.error}" for r in results if r.status == "failed"]
    return paths, failures


def describe(r: MonthResult) -> str:
    if r.status == "fetched":
        return f"{r.posts} posts in {r.pages} pages{' (resumed)' if r.resumed else ''} -> {r.path}"
    return f"{r.status} {r.path or r.error or ''}".strip()
