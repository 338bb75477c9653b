"""The one rule for reusing earlier work, for whole parts and for single items.

A done marker records, for every file a part read and wrote, its sha256 with the size and
mtime it had when it was hashed. A file is *unchanged* when its size and mtime still match
the record (cheap: a rebuild that finds nothing new stats files instead of reading them), or,
when they differ, when its sha256 still matches (a copied or touched file with the same bytes
is still the same input). `WEBTEXT_VERIFY=1` (`webtext build --verify`) hashes every file
instead of trusting size and mtime.

Whole parts (core.stage.run_marked) skip when the marker's config fingerprint, stage version
and input hashes match and every output is unchanged. Stages whose part grows between builds
(crawl and extract, when a new month is merged into a links part) reuse item by item: they ask
`earlier_run` for the part's previous marker made with the same config and version, and take
an earlier item's outcome when the files it came from are unchanged by this same rule.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.io import sha256_file

FileRecord = dict[str, Any]  # {"sha256": hex, "size": bytes, "mtime_ns": int}


def verify_all() -> bool:
    """Hash every file instead of trusting size and mtime (read per call, so a flag set by the
    CLI reaches worker processes through the environment)."""
    return os.environ.get("WEBTEXT_VERIFY", "") not in ("", "0")


def _stat_matches(path: Path, record: Mapping[str, Any]) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_size == record.get("size") and st.st_mtime_ns == record.get("mtime_ns")


def file_record(path: Path, earlier: Mapping[str, Any] | None = None) -> FileRecord:
    """The record of a file now; the earlier record's hash is taken over when size and mtime
    show the file untouched since it was hashed."""
    path = Path(path)
    if earlier is not None and not verify_all() and _stat_matches(path, earlier):
        return {
            "sha256": earlier["sha256"],
            "size": earlier["size"],
            "mtime_ns": earlier["mtime_ns"],
        }
    st = path.stat()
    return {"sha256": sha256_file(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def unchanged(path: Path, record: Any) -> bool:
    """Whether the file still holds the bytes its record was made from."""
    path = Path(path)
    if not isinstance(record, dict) or "sha256" not in record or not path.is_file():
        return False
    if not verify_all() and _stat_matches(path, record):
        return True
    return sha256_file(path) == record["sha256"]


def _rel(path: Path, root: Path | None) -> str:
    if root is not None and path.is_relative_to(root):
        return str(path.relative_to(root))
    return str(path)


def record_files(
    paths: Iterable[Path], root: Path | None, earlier: Mapping[str, Any] | None = None
) -> dict[str, FileRecord]:
    """Records keyed by path (relative to root when under it), reusing earlier records of
    untouched files."""
    earlier = earlier or {}
    out: dict[str, FileRecord] = {}
    for p in sorted(Path(x) for x in paths):
        key = _rel(p, root)
        prev = earlier.get(key)
        out[key] = file_record(p, prev if isinstance(prev, dict) else None)
    return out


def digests(records: Mapping[str, Any]) -> dict[str, str]:
    """{path: sha256} of a marker's records: what decides whether inputs are the same."""
    return {k: v["sha256"] for k, v in records.items() if isinstance(v, dict) and "sha256" in v}


def marker_path(root: Path, stage: str, part: str) -> Path:
    return Path(root) / "_done" / stage / f"{part}.json"


def read_marker(path: Path) -> dict[str, Any] | None:
    """A done marker, or None when unreadable. Markers of releases before file records
    ({path: sha256} under "inputs" and "output_sha256") read as records without size and
    mtime, so their files are hashed once instead of their parts being redone."""
    try:
        marker = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict):
        return None
    if "outputs" not in marker and isinstance(marker.get("output_sha256"), dict):
        marker["outputs"] = {k: {"sha256": v} for k, v in marker.pop("output_sha256").items()}
        if isinstance(marker.get("inputs"), dict):
            marker["inputs"] = {
                k: {"sha256": v} if isinstance(v, str) else v for k, v in marker["inputs"].items()
            }
    return marker


@dataclass
class EarlierRun:
    """The complete earlier run of one part, made with the current config and version."""

    root: Path
    marker: dict[str, Any]

    @property
    def inputs(self) -> dict[str, Any]:
        return dict(self.marker.get("inputs") or {})

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.marker.get("outputs") or {})

    def input_unchanged(self, rel: str) -> bool:
        return unchanged(self.root / rel, self.inputs.get(rel))

    def output_unchanged(self, rel: str) -> bool:
        return unchanged(self.root / rel, self.outputs.get(rel))

    def changed_outputs(self) -> list[str]:
        return [rel for rel in sorted(self.outputs) if not self.output_unchanged(rel)]


def earlier_run(
    root: Path, stage: str, part: str, config_fp: str, version: int
) -> tuple[EarlierRun | None, str]:
    """The part's earlier run if its marker was made with this config and stage version:
    (run, "") or (None, why not)."""
    mpath = marker_path(root, stage, part)
    if not mpath.is_file():
        return None, "no earlier run"
    marker = read_marker(mpath)
    if marker is None:
        return None, "done marker unreadable"
    if marker.get("config") != config_fp:
        return None, f"{stage} config changed"
    if marker.get("version") != version:
        return None, f"stage version {marker.get('version')} != {version}"
    if not isinstance(marker.get("inputs"), dict) or not isinstance(marker.get("outputs"), dict):
        return None, "done marker from an older layout"
    return EarlierRun(root=Path(root), marker=marker), ""
