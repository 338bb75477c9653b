"""The report driver: summary.json and index.html of one build folder."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.core.config import CorpusConfig
from pipeline.core.io import atomic_write_bytes, atomic_write_json
from pipeline.report.render import render_html
from pipeline.report.summary import summarize

log = logging.getLogger(__name__)

STAGE = "report"
# Bump by hand when a change alters what the report writes.
VERSION = 1
REPORT_DIR = "report"


def run(root: Path, cfg: CorpusConfig | None = None) -> Path:
    """Write ROOT/report/summary.json and ROOT/report/index.html; return ROOT/report.

    Reads only the build folder (see the package docstring); `cfg` supplies the corpus name
    when the build has no manifest yet. Both files are written atomically and are the same
    bytes on every run over the same build. No done marker: the report is cheap and always
    reflects the folder as it is.
    """
    root = Path(root)
    summary = summarize(root)
    if summary["corpus"]["name"] is None and cfg is not None:
        summary["corpus"]["name"] = cfg.name
    out = root / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "summary.json", summary)
    atomic_write_bytes(out / "index.html", render_html(summary, root.resolve()).encode("utf-8"))
    log.info("report: %s", out / "index.html")
    return out
