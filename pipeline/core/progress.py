"""Progress of a build, as small JSON files that any process can write and read.

Parts run in threads, in worker processes, in crawl subprocesses and on Dask workers, so
progress travels the way outputs do: through the build folder. Each running part owns one
file, `_progress/<step>/<part>.json` ({"done", "total", "started", "updated", "finished"}),
rewritten atomically at most once per `interval` seconds; the flow writes
`_progress/_plan.json` (the parts each stage will run) before it submits them. Readers (the
CLI's bars, the flow's Prefect progress artifacts, the report's throughput table) poll
`read_progress`. Nothing here knows about Prefect or a terminal.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pipeline.core.io import atomic_write_json
from pipeline.core.ledger import STAGES

PROGRESS_DIR = "_progress"

log = logging.getLogger(__name__)


def progress_path(root: Path, step: str, part: str) -> Path:
    return Path(root) / PROGRESS_DIR / step / f"{part}.json"


class PartProgress:
    """Items done of one part, published to its progress file."""

    def __init__(
        self, root: Path, step: str, part: str, total: int | None = None, interval: float = 1.0
    ):
        self.path = progress_path(root, step, part)
        self.total = total
        self.done = 0
        self.interval = interval
        # A part already under way (the driver marked its start before the stage counted
        # its items) keeps its start time.
        earlier = _read(self.path)
        if earlier is not None and not earlier.get("finished") and earlier.get("started"):
            self.started = float(earlier["started"])
        else:
            self.started = time.time()
        self._written = 0.0
        self._write(finished=False)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self._written >= self.interval:
            self._write(finished=False)

    def finish(self, done: int | None = None) -> None:
        if done is not None:
            self.done = done
        self._write(finished=True)

    def _write(self, finished: bool) -> None:
        self._written = time.monotonic()
        try:
            atomic_write_json(
                self.path,
                {
                    "done": self.done,
                    "total": self.total,
                    "started": round(self.started, 3),
                    "updated": round(time.time(), 3),
                    "finished": finished,
                },
            )
        except OSError:
            pass  # progress is advisory: a full disk must not fail the part over it


def write_plan(root: Path, stage: str, parts: list[str]) -> None:
    """Declare the parts a stage will run in this build (its bar's total)."""
    path = Path(root) / PROGRESS_DIR / "_plan.json"
    try:
        plan = json.loads(path.read_text())
    except (OSError, ValueError):
        plan = {}
    plan[stage] = sorted(parts)
    atomic_write_json(path, plan)


def clear(root: Path) -> None:
    """Forget the progress of an earlier build (the flow calls it first)."""
    base = Path(root) / PROGRESS_DIR
    if base.is_dir():
        for p in sorted(base.rglob("*.json")):
            p.unlink(missing_ok=True)


@dataclass
class StageProgress:
    stage: str
    parts_total: int
    parts_done: int
    items_done: int
    items_total: int | None  # None until every running part knows its total
    started: float | None
    updated: float | None

    @property
    def rate(self) -> float | None:
        """Items per second since the stage's first part started."""
        if self.started is None or self.updated is None or self.updated <= self.started:
            return None
        return self.items_done / (self.updated - self.started)

    @property
    def eta(self) -> float | None:
        rate = self.rate
        if not rate or self.items_total is None:
            return None
        return max(self.items_total - self.items_done, 0) / rate

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "parts_total": self.parts_total,
            "parts_done": self.parts_done,
            "items_done": self.items_done,
            "items_total": self.items_total,
            "rate": self.rate,
            "eta": self.eta,
        }


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_progress(root: Path) -> dict[str, StageProgress]:
    """Progress of every stage the plan names, in pipeline order."""
    base = Path(root) / PROGRESS_DIR
    plan = _read(base / "_plan.json") or {}
    out: dict[str, StageProgress] = {}
    for stage in STAGES:
        parts = plan.get(stage)
        if parts is None:
            continue
        done = items = 0
        total: int | None = 0
        started: list[float] = []
        updated: list[float] = []
        for part in parts:
            rec = _read(base / stage / f"{part}.json")
            if rec is None:
                total = None
                continue
            done += bool(rec.get("finished"))
            items += int(rec.get("done") or 0)
            if rec.get("total") is None or total is None:
                total = None
            else:
                total += int(rec["total"])
            started.append(float(rec.get("started") or 0))
            updated.append(float(rec.get("updated") or 0))
        out[stage] = StageProgress(
            stage=stage,
            parts_total=len(parts),
            parts_done=done,
            items_done=items,
            items_total=total,
            started=min(started) if started else None,
            updated=max(updated) if updated else None,
        )
    return out


class Poller:
    """Calls `tick` every `interval` seconds in a daemon thread while the block runs. The
    thread runs in a copy of the caller's context (a flow run's, for Prefect artifacts). A
    failing tick is logged and the next one comes: progress must never stop a build."""

    def __init__(self, tick: Callable[[], None], interval: float, name: str):
        self.tick = tick
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._run,), name=name, daemon=True
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception as err:  # noqa: BLE001
                log.debug("%s: %s", self._thread.name, err)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
