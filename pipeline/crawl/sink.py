"""The archive writer: WARC records, then the journal lines that point at them.

Flushes are batched (two syscalls per page add up at hundreds of pages a second), always the
WARC before the journal, so the journal never runs ahead of the archive. A kill loses at most
the unflushed batch: a resumed crawl fetches those links again and cuts their stray WARC bytes.

It runs in the reactor thread. A writer thread was measured and rejected: zlib and hashlib
release the GIL, but the Python around them does not, and GIL hand-offs with the reactor
raised the crawl's CPU per page from 1.2 to 1.8 ms (pages/s with WARC fell from ~90% of the
bare spider's to ~66%; benchmarks/crawl_throughput.py).
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.crawl.journal import Journal
from pipeline.crawl.warc import WarcRotator

SYNC_ROWS = 64
SYNC_SECONDS = 0.2


class ArchiveSink:
    def __init__(self, warc: WarcRotator, journal: Journal):
        self.warc = warc
        self.journal = journal
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def submit(self, row: dict[str, Any], warc_kwargs: dict[str, Any] | None) -> None:
        """Archive the page (if kwargs are given) and journal its row."""
        if warc_kwargs is not None:
            loc = self.warc.write(**warc_kwargs)
            row.update(
                warc_file=loc.file, warc_offset=loc.offset, warc_length=loc.length, warc_end=loc.end
            )
        self.journal.append(row)
        self._unsynced += 1
        if self._unsynced >= SYNC_ROWS or time.monotonic() - self._last_sync >= SYNC_SECONDS:
            self.sync()

    def sync(self) -> None:
        self.warc.flush()
        self.journal.commit()
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        """WARC closed (flushed, fsynced) before the journal: same order as sync()."""
        self.warc.close()
        self.journal.close()
