"""`python -m pipeline.report BUILD_DIR`: write BUILD_DIR/report/{index.html,summary.json}."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.report.driver import run

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pipeline.report BUILD_DIR")
    print(run(Path(sys.argv[1])) / "index.html")
