"""Task runner from config: local threads, or Dask (a local cluster or a scheduler address)."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from pipeline.core.config import RunnerConfig


def make_task_runner(cfg: RunnerConfig) -> Any:
    if cfg.kind == "dask":
        import dask
        from prefect_dask import DaskTaskRunner

        # Extract parts fan pages out to a process pool, which a daemonic worker cannot
        # start; local clusters get non-daemonic workers (remote ones: set the same key).
        dask.config.set({"distributed.worker.daemon": False})

        if cfg.dask_address:
            return DaskTaskRunner(address=cfg.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": cfg.dask_workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    return ThreadPoolTaskRunner(max_workers=cfg.max_workers)
