"""Documents by source (live | wayback | commoncrawl): the funnel's `by_source` figures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any


def count_by_source(sources: Iterable[Any]) -> dict[str, int]:
    """{source: n} of a stage's output rows; rows of an older build without the column are
    live (archive fallback did not exist then)."""
    counts = Counter(str(s) if s else "live" for s in sources)
    return dict(sorted(counts.items()))
