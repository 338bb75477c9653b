"""The stage contract as one mechanism: skip parts whose done marker matches, else run the
part, check its counts add up, and record a marker with fingerprints and stats."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipeline.core.io import atomic_write_json
from pipeline.core.ledger import STAGES, STEPS, StageStats
from pipeline.core.progress import PartProgress
from pipeline.core.reuse import digests, marker_path, read_marker, record_files, unchanged

log = logging.getLogger(__name__)

__all__ = [
    "failed_part",
    "funnel",
    "funnel_from_stats",
    "marker_path",
    "read_stats",
    "run_marked",
    "with_failed",
    "write_funnel",
]


def _marker_matches(marker: dict[str, Any], root: Path, expect: dict[str, Any]) -> bool:
    if marker.get("config") != expect["config"] or marker.get("version") != expect["version"]:
        return False
    if digests(marker.get("inputs") or {}) != digests(expect["inputs"]):
        return False
    outputs = marker.get("outputs")
    if not isinstance(outputs, dict):
        return False
    return all(unchanged(root / rel, rec) for rel, rec in outputs.items())


def run_marked(
    root: Path,
    step: str,
    part: str,
    inputs: Iterable[Path],
    config_fp: str,
    version: int,
    work: Callable[[], StageStats],
    force: bool = False,
) -> StageStats:
    """Run `work` for one part of a step unless an identical run already finished.

    `work` writes its outputs atomically and returns stats whose `outputs` lists them
    (relative to root). The marker is written last, so a kill at any point leaves either no
    marker (the part reruns) or a complete part. Files are judged by core.reuse's rule.
    """
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}: add it to pipeline.core.ledger.STEPS")
    root = Path(root)
    inputs = list(inputs)
    mpath = marker_path(root, step, part)
    marker = read_marker(mpath) if mpath.is_file() else None
    earlier_inputs = (marker or {}).get("inputs")
    expect = {
        "inputs": record_files(
            inputs, root, earlier_inputs if isinstance(earlier_inputs, dict) else None
        ),
        "config": config_fp,
        "version": version,
    }
    if not force and marker is not None and _marker_matches(marker, root, expect):
        log.info("%s/%s: done marker matches, skipping", step, part)
        stats = StageStats.from_json(marker["stats"])
        stats.extra["skipped"] = True
        PartProgress(root, step, part, total=stats.n_in).finish(stats.n_in)
        return stats
    earlier_outputs = (marker or {}).get("outputs")
    # Stages that count items (crawl, extract) update the same file while they work.
    progress = PartProgress(root, step, part)
    stats = work()
    stats.check()
    progress.total = stats.n_in
    progress.finish(stats.n_in)
    new_marker = dict(expect)
    new_marker["stats"] = stats.to_json()
    # Outputs an earlier run recorded and this one left untouched (a crawl's earlier WARC
    # files) keep their hash without being read again.
    new_marker["outputs"] = record_files(
        (root / rel for rel in stats.outputs),
        root,
        earlier_outputs if isinstance(earlier_outputs, dict) else None,
    )
    atomic_write_json(mpath, new_marker)
    return stats


def read_stats(root: Path, stage: str) -> list[StageStats]:
    out = []
    for p in sorted((Path(root) / "_done" / stage).glob("*.json")):
        out.append(StageStats.from_json(json.loads(p.read_text())["stats"]))
    return out


def funnel(root: Path, parts: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Sum the done markers of every stage: {stage: {"in", "out", "dropped": {reason: n}}}.

    `parts` limits a stage to the named parts, so markers of parts a smaller rebuild no
    longer has do not inflate the counts.
    """
    stats = [
        st
        for stage in STAGES
        for st in read_stats(root, stage)
        if parts is None or stage not in parts or st.part in parts[stage]
    ]
    return funnel_from_stats(stats)


def write_funnel(root: Path, parts: dict[str, list[str]] | None = None) -> dict[str, Any]:
    data = funnel(root, parts)
    atomic_write_json(Path(root) / "funnel.json", data)
    return data


def funnel_from_stats(stats: Iterable[StageStats]) -> dict[str, Any]:
    """The funnel of exactly the parts one build ran or skipped. A stage whose parts report
    `stripped` figures (the filter's Wikipedia paragraphs) gets their sums too, and stages whose
    parts count their output by source (live, wayback, commoncrawl) get `by_source`."""
    result: dict[str, Any] = {}
    for stage in STAGES:
        n_in = n_out = 0
        dropped: Counter[str] = Counter()
        stripped: Counter[str] = Counter()
        by_source: Counter[str] = Counter()
        has_stripped = False
        for st in stats:
            if st.stage == stage:
                n_in += st.n_in
                n_out += st.n_out
                dropped.update(st.dropped)
                if isinstance(st.extra.get("stripped"), dict):
                    has_stripped = True
                    stripped.update(st.extra["stripped"])
                if isinstance(st.extra.get("by_source"), dict):
                    by_source.update(st.extra["by_source"])
        result[stage] = {"in": n_in, "out": n_out, "dropped": dict(sorted(dropped.items()))}
        if has_stripped:
            result[stage]["stripped"] = dict(sorted(stripped.items()))
        if by_source:
            # Output rows by where their bytes came from (live crawl or a web archive).
            result[stage]["by_source"] = dict(sorted(by_source.items()))
    return result


def failed_part(
    stage: str, part: str, held: Path, root: Path, err: BaseException
) -> dict[str, Any]:
    """A part that failed, as funnel.json lists it: the input it held and how many rows that
    is (None when the input cannot be read), and why it failed."""
    import pyarrow.parquet as pq

    try:
        rows: int | None = pq.read_metadata(held).num_rows
    except Exception:  # noqa: BLE001 - an unreadable input is reported as such
        rows = None
    held, root = Path(held), Path(root)
    return {
        "stage": stage,
        "part": part.split(".")[0],
        "input": str(held.relative_to(root)) if held.is_relative_to(root) else str(held),
        "rows": rows,
        "error": f"{type(err).__name__}: {err}"[:1000],
    }


def with_failed(funnel: dict[str, Any], failed: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The funnel with each failed part listed under its stage (`failed`); its rows are not
    in the stage's `in`, so in = out + dropped still holds."""
    for f in failed:
        funnel[f["stage"]].setdefault("failed", []).append(
            {k: v for k, v in f.items() if k != "stage"}
        )
    return funnel
