"""Drop reasons and per-part stage stats: every input item is an output row or a ledger row."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.io import rows_to_table, write_table
from schemas.records import LEDGER_SCHEMA, LedgerRow

# The stages of the funnel, in order.
STAGES = ("harvest", "crawl", "extract", "filter", "dedup", "shards")
# Every step that keeps done markers, with the stage it belongs to. A stage's own parts are a
# step of the same name; the others are intermediate steps whose counts reach the funnel
# through their stage's parts (harvest_file: each dump judged once; dedup_signatures: MinHash
# signatures per part, reused by later builds).
STEPS = {
    **{stage: stage for stage in STAGES},
    "harvest_file": "harvest",
    "dedup_signatures": "dedup",
}


@dataclass
class StageStats:
    stage: str
    part: str
    n_in: int = 0
    n_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    outputs: list[str] = field(default_factory=list)  # files written, relative to the root
    extra: dict[str, Any] = field(default_factory=dict)  # stage-specific figures

    def check(self) -> None:
        total = self.n_out + sum(self.dropped.values())
        if total != self.n_in:
            raise AssertionError(
                f"{self.stage}/{self.part}: in={self.n_in} but out+dropped={total} "
                f"({self.n_out} + {dict(self.dropped)})"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "part": self.part,
            "in": self.n_in,
            "out": self.n_out,
            "dropped": dict(sorted(self.dropped.items())),
            "outputs": sorted(self.outputs),
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StageStats:
        return cls(
            stage=d["stage"],
            part=d["part"],
            n_in=d["in"],
            n_out=d["out"],
            dropped=Counter(d["dropped"]),
            outputs=list(d.get("outputs", [])),
            extra=dict(d.get("extra", {})),
        )


class Ledger:
    """Collects drops of one stage part and writes ledger/<stage>/<part>.parquet."""

    def __init__(self, root: Path, stage: str, part: str):
        self.path = Path(root) / "ledger" / stage / f"{part}.parquet"
        self.rows: list[LedgerRow] = []
        self.counts: Counter[str] = Counter()

    def drop(self, key: str, reason: str, detail: str = "") -> None:
        self.rows.append(LedgerRow(key=key, reason=reason, detail=detail))
        self.counts[reason] += 1

    def write(self) -> Path:
        rows = sorted(self.rows, key=lambda r: (r.key, r.reason, r.detail))
        write_table(self.path, rows_to_table(rows, LEDGER_SCHEMA))
        return self.path
