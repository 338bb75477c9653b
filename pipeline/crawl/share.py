"""Each crawl part's share of a busy machine, by the links it has left.

The parts of a build crawl at once, one process each, and on a saturated machine every one of
them settles at the same lag window (pipeline/crawl/window.py), often its floor: a part with
more links then gets no more of the machine and ends last (on the benchmark web, parts of
2,200 links ended at 84 s and parts of 2,900 at 125-130 s). Here each part publishes its links
left on a board, a directory of small files under the build's crawl/_work/, and weighs its
window by its links left over the mean of the parts running on the same machine: the floor
and the growth of its window scale by that weight, so the parts' shares follow their work and
they end closer together. Only parts on this machine count (a Dask cluster's other machines
have CPUs of their own), and a part that stopped publishing (ended, killed) drops out after
STALE seconds.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

# Bounds of a part's weight: no part is starved, nor takes all of the machine.
MIN_WEIGHT = 0.25
MAX_WEIGHT = 4.0
STALE = 5.0


class LoadBoard:
    def __init__(self, directory: Path, part: str, host: str | None = None):
        self.directory = Path(directory)
        # "@" cannot be part of a host name: one name that begins another is not mistaken for it.
        self.prefix = f"{host or socket.gethostname()}@"
        self.path = self.directory / f"{self.prefix}{part}"
        self.directory.mkdir(parents=True, exist_ok=True)

    def publish(self, links_left: int) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(str(links_left))
        os.replace(tmp, self.path)  # readers never see half a number

    def weight(self, links_left: int, now: float | None = None) -> float:
        """`links_left` over the mean of the fresh entries (this part's own included)."""
        now = time.time() if now is None else now
        loads = [links_left]
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return 1.0
        for entry in entries:
            if not entry.name.startswith(self.prefix) or entry.name.endswith(".tmp"):
                continue
            if entry.path == str(self.path):
                continue
            try:
                if now - entry.stat().st_mtime > STALE:
                    continue
                loads.append(int(Path(entry.path).read_text()))
            except (OSError, ValueError):
                continue
        mean = sum(loads) / len(loads)
        if mean <= 0:
            return 1.0
        return min(MAX_WEIGHT, max(MIN_WEIGHT, links_left / mean))

    def leave(self) -> None:
        self.path.unlink(missing_ok=True)
