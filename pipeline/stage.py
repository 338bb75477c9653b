"""The stage contract as one mechanism: skip parts whose done marker matches, else run the
part, check its counts add up, and record a marker with fingerprints and stats."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipeline.io import atomic_write_json, fingerprint_files, sha256_file
from pipeline.ledger import STAGES, StageStats

log = logging.getLogger(__name__)


def marker_path(root: Path, stage: str, part: str) -> Path:
    return Path(root) / "_done" / stage / f"{part}.json"


def _marker_matches(marker: dict[str, Any], root: Path, expect: dict[str, Any]) -> bool:
    for key in ("inputs", "config", "version"):
        if marker.get(key) != expect[key]:
            return False
    for rel, digest in marker.get("output_sha256", {}).items():
        p = root / rel
        if not p.is_file() or sha256_file(p) != digest:
            return False
    return True


def run_part(
    root: Path,
    stage: str,
    part: str,
    inputs: Iterable[Path],
    config_fp: str,
    version: int,
    work: Callable[[], StageStats],
    force: bool = False,
) -> StageStats:
    """Run `work` for one part unless an identical run already finished.

    `work` writes its outputs atomically and returns stats whose `outputs` lists them
    (relative to root). The marker is written last, so a kill at any point leaves either no
    marker (the part reruns) or a complete part.
    """
    root = Path(root)
    expect = {
        "inputs": fingerprint_files(inputs, root),
        "config": config_fp,
        "version": version,
    }
    mpath = marker_path(root, stage, part)
    if not force and mpath.is_file():
        try:
            marker = json.loads(mpath.read_text())
        except (OSError, ValueError):
            marker = {}
        if marker and _marker_matches(marker, root, expect):
            log.info("%s/%s: done marker matches, skipping", stage, part)
            stats = StageStats.from_json(marker["stats"])
            stats.extra["skipped"] = True
            return stats
    stats = work()
    stats.check()
    marker = dict(expect)
    marker["stats"] = stats.to_json()
    marker["output_sha256"] = {rel: sha256_file(root / rel) for rel in sorted(stats.outputs)}
    atomic_write_json(mpath, marker)
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
    """The funnel of exactly the parts one build ran or skipped."""
    result: dict[str, Any] = {}
    for stage in STAGES:
        n_in = n_out = 0
        dropped: Counter[str] = Counter()
        for st in stats:
            if st.stage == stage:
                n_in += st.n_in
                n_out += st.n_out
                dropped.update(st.dropped)
        result[stage] = {"in": n_in, "out": n_out, "dropped": dict(sorted(dropped.items()))}
    return result


def earlier_marker(
    root: Path, stage: str, part: str, config_fp: str, version: int
) -> tuple[dict[str, Any] | None, str]:
    """The done marker of a part's earlier run, if it was made with this config and stage
    version: (marker, "") or (None, why not). Stages that reuse earlier per-item outcomes when
    their inputs grow start here."""
    mpath = marker_path(root, stage, part)
    if not mpath.is_file():
        return None, "no earlier run"
    try:
        marker = json.loads(mpath.read_text())
    except (OSError, ValueError) as err:
        return None, f"done marker unreadable: {err}"
    if not isinstance(marker, dict):
        return None, "done marker malformed"
    if marker.get("config") != config_fp:
        return None, f"{stage} config changed"
    if marker.get("version") != version:
        return None, f"stage version {marker.get('version')} != {version}"
    return marker, ""
