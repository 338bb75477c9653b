"""The crawl journal: one JSON line per finished link, appended as the crawl goes.

It is what makes a crawl resumable. A line is written only after the page's WARC records are
flushed, so after a SIGKILL every journaled link has its records, and WARC bytes past the last
journaled pair belong to no link and are cut off. The first line identifies the run (links
fingerprint, config fingerprint, stage version): a journal of another run is discarded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from pipeline.crawl.warc import WarcLocation


def work_dir(root: Path, part: str) -> Path:
    return Path(root) / "crawl" / "_work" / part


def journal_path(root: Path, part: str) -> Path:
    return work_dir(root, part) / "journal.jsonl"


def read_journal(path: Path, header: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Rows of a journal written by the same run, or None when there is none or it is from
    another run. A torn last line (killed mid-write) is ignored."""
    if not path.is_file():
        return None
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        first = f.readline()
        try:
            if json.loads(first) != header:
                return None
        except ValueError:
            return None
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                rows.append(json.loads(line))
            except ValueError:
                break
    return rows


def last_warc_location(rows: list[dict[str, Any]]) -> WarcLocation | None:
    for row in reversed(rows):
        if row.get("warc_file"):
            return WarcLocation(
                row["warc_file"], row["warc_offset"], row["warc_length"], row["warc_end"]
            )
    return None


class Journal:
    def __init__(self, path: Path, header: dict[str, Any], rows: list[dict[str, Any]] | None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        if rows is None:
            self._fh: TextIO = open(path, "w", encoding="utf-8")  # noqa: SIM115 (lives with self)
            self._fh.write(json.dumps(header, sort_keys=True) + "\n")
            self._fh.flush()
        else:
            # Rewrite without a torn tail so appended lines start on a fresh line.
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(json.dumps(header, sort_keys=True) + "\n")
                f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in rows)
            os.replace(tmp, path)
            self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115

        # Lines wait here until commit(): the caller flushes the WARC first, so a line never
        # reaches the file before the records it points at (a buffer flushing on its own
        # could reorder them).
        self._pending: list[str] = []

    def append(self, row: dict[str, Any]) -> None:
        self._pending.append(json.dumps(row, sort_keys=True) + "\n")

    def commit(self) -> None:
        if self._pending:
            self._fh.write("".join(self._pending))
            self._pending.clear()
        self._fh.flush()

    def close(self) -> None:
        self.commit()
        os.fsync(self._fh.fileno())
        self._fh.close()
