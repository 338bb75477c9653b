"""The build's progress in the terminal: rich bars on a TTY, a log line per interval otherwise.

A thread polls pipeline.core.progress.read_progress while the flow runs; it draws one bar per
stage (parts done of total) with, for stages that count pages (crawl, extract), pages done of
total, pages/s and ETA.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, Self

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from pipeline.core.progress import Poller, StageProgress, read_progress

ITEM_STAGES = ("crawl", "extract")


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"ETA {seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _items(sp: StageProgress) -> str:
    if sp.stage not in ITEM_STAGES:
        return ""
    total = "?" if sp.items_total is None else f"{sp.items_total:,}"
    rate = f"{sp.rate:,.1f} pages/s" if sp.rate is not None else ""
    return f"pages {sp.items_done:,}/{total} {rate}"


def describe(sp: StageProgress) -> str:
    """One line for logs: 'crawl 2/4 parts, pages 150/214 35.2 pages/s ETA 0:00:02'."""
    parts = [f"{sp.stage} {sp.parts_done}/{sp.parts_total} parts"]
    items = _items(sp)
    if items:
        parts.append(items)
    if sp.parts_done < sp.parts_total and sp.stage in ITEM_STAGES:
        parts.append(_eta(sp.eta))
    return ", ".join(p for p in parts if p)


class ProgressView:
    """Context manager drawing a build's progress until the block ends."""

    def __init__(
        self,
        root: Path,
        tty: bool | None = None,
        interval: float | None = None,
        stream: IO[str] | None = None,
    ):
        self.root = Path(root)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval if interval is not None else (0.25 if self.tty else 10.0)
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._last_line: dict[str, str] = {}

    def __enter__(self) -> Self:
        if self.tty:
            self._progress = Progress(
                TextColumn("{task.description:<8}"),
                BarColumn(bar_width=30),
                TextColumn("{task.completed:>4.0f}/{task.total:<4.0f} parts"),
                TextColumn("{task.fields[items]}"),
                TextColumn("{task.fields[eta]}"),
                console=Console(file=self.stream, force_terminal=True),
                transient=False,
                auto_refresh=False,
            )
            self._progress.start()
        self._poller = Poller(lambda: self._draw(final=False), self.interval, "webtext-progress")
        self._poller.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._poller.__exit__()
        self._draw(final=True)
        if self._progress is not None:
            self._progress.stop()

    def _draw(self, final: bool) -> None:
        stages = read_progress(self.root)
        if self._progress is not None:
            for name, sp in stages.items():
                items = _items(sp)
                eta = _eta(sp.eta) if sp.parts_done < sp.parts_total else ""
                if name not in self._tasks:
                    self._tasks[name] = self._progress.add_task(
                        name, total=max(sp.parts_total, 1), items=items, eta=eta
                    )
                self._progress.update(
                    self._tasks[name],
                    completed=sp.parts_done,
                    total=max(sp.parts_total, 1),
                    items=items,
                    eta=eta,
                )
            self._progress.refresh()
            return
        for name, sp in stages.items():
            line = describe(sp)
            # A line when something moved (and once at the end): a quiet log for a long crawl.
            if self._last_line.get(name) != line or (final and name not in self._last_line):
                self._last_line[name] = line
                stamp = time.strftime("%H:%M:%S")
                print(f"{stamp} | progress | {line}", file=self.stream, flush=True)
