"""The figures of a build's report, read from the files in the build folder.

`summarize(root)` returns one JSON-ready dict (see the package docstring for its sections).
Every figure comes from a file the stages wrote; nothing is recomputed from text. Memory is
bounded by what is being counted (distinct values, domains, kept ids), never by the text:
Parquet parts are streamed a record batch at a time and only the needed columns are read.

Deterministic: files are read in sorted order, samples are the smallest keys, ties break by
name, floats are rounded, and the only timestamps are the ones copied from progress files.
A missing or unreadable file costs its section ("not computed" / a warning), never the report.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core.ledger import STAGES, STEPS

SUMMARY_VERSION = 1
N_SAMPLES = 5  # sample keys per (stage, reason): the smallest keys
TOP_DOMAINS = 50
BATCH_ROWS = 65_536
DEDUP_REASONS = ("exact_duplicate", "near_duplicate")
WIKI_REASONS = ("wikipedia", "wikipedia_copy")
PROGRESS_DIR = "_progress"  # _progress/<step>/<part>.json (optional; written by newer builds)

INT32_MIN = -(2**31)
INT32_END = 2**31  # one past int32's largest value
# Log-spaced integer edges, about 10 per decade from 1 to 10^7: 0, 1, 2, 3, 4, 5, 6, 8, 10,
# 13, 16, 20, 25, 32, 40, 50, 63, 79, 100, ... Bins are half-open [a, b); the last one runs
# to the end of int32, so every n_tokens value has a bin.
_LOG_EDGES = sorted({round(10 ** (i / 10)) for i in range(71)})
LENGTH_EDGES: list[int] = [0, *_LOG_EDGES, INT32_END]
# Karma: the same series, with one bin for negative values in front.
KARMA_EDGES: list[int] = [INT32_MIN, *LENGTH_EDGES]
# Scores and shares in [0, 1]: 20 bins of 0.05, the last one closed ([0.95, 1.0]).
SCORE_EDGES: list[float] = [i / 20 for i in range(21)]


def _r(x: float | None, digits: int = 6) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


# --- reading ------------------------------------------------------------------------------


class _Reader:
    """Streams columns of the Parquet parts of a folder; records what it could not read."""

    def __init__(self, root: Path, warnings: list[str]):
        self.root = root
        self.warnings = warnings

    def parts(self, rel: str) -> list[Path]:
        folder = self.root / rel
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob("*.parquet") if p.is_file())

    def columns_of(self, path: Path) -> list[str] | None:
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as err:  # noqa: BLE001 - a damaged part is a warning, not a crash
            self.warnings.append(f"{self._rel(path)}: unreadable ({type(err).__name__}: {err})")
            return None

    def batches(self, path: Path, columns: list[str]) -> Iterator[pa.Table]:
        """Record batches (as one-batch tables) of `columns`; stops at the first error."""
        try:
            pf = pq.ParquetFile(path)
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                yield pa.Table.from_batches([batch])
        except Exception as err:  # noqa: BLE001
            self.warnings.append(f"{self._rel(path)}: unreadable ({type(err).__name__}: {err})")

    def scan(self, paths: list[Path], wanted: list[str]) -> Iterator[tuple[Path, pa.Table]]:
        """Batches of the wanted columns that each part has (missing ones are left out)."""
        for path in paths:
            names = self.columns_of(path)
            if names is None:
                continue
            cols = [c for c in wanted if c in names]
            if not cols:
                continue
            for table in self.batches(path, cols):
                yield path, table

    def json(self, path: Path) -> Any:
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            self.warnings.append(f"{self._rel(path)}: unreadable ({err})")
            return None

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


# --- distributions ------------------------------------------------------------------------


def int_label(lo: int, hi: int) -> str:
    """Label of the integer bin [lo, hi)."""
    if lo == INT32_MIN:
        return f"<{hi}"
    if hi == INT32_END:
        return f">={lo}"
    if hi - lo == 1:
        return str(lo)
    return f"{lo}-{hi - 1}"


class IntDistribution:
    """Exact distribution of an integer column, kept as value -> count (bounded by the number
    of distinct values, not rows). Quantiles are numpy's default (linear interpolation)."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.missing = 0

    def add(self, column: pa.ChunkedArray | pa.Array) -> None:
        self.missing += column.null_count
        values = column.drop_null().to_numpy(zero_copy_only=False).astype(np.int64)
        if values.size == 0:
            return
        uniq, cnt = np.unique(values, return_counts=True)
        for v, c in zip(uniq.tolist(), cnt.tolist(), strict=True):
            self.counts[v] = self.counts.get(v, 0) + c

    def _sorted(self) -> tuple[np.ndarray, np.ndarray]:
        keys = np.array(sorted(self.counts), dtype=np.int64)
        cnts = np.array([self.counts[k] for k in keys.tolist()], dtype=np.int64)
        return keys, cnts

    def quantile(self, q: float) -> float | None:
        keys, cnts = self._sorted()
        n = int(cnts.sum())
        if n == 0:
            return None
        cum = np.cumsum(cnts)
        h = (n - 1) * q
        lo = math.floor(h)
        hi = min(lo + 1, n - 1)
        v_lo = int(keys[np.searchsorted(cum, lo, side="right")])
        v_hi = int(keys[np.searchsorted(cum, hi, side="right")])
        return v_lo + (h - lo) * (v_hi - v_lo)

    def stats(self) -> dict[str, Any]:
        n = sum(self.counts.values())
        total = sum(v * c for v, c in self.counts.items())
        return {
            "count": n,
            "missing": self.missing,
            "sum": total,
            "mean": _r(total / n, 4) if n else None,
            "median": _r(self.quantile(0.5), 4),
            "p90": _r(self.quantile(0.9), 4),
            "min": min(self.counts) if n else None,
            "max": max(self.counts) if n else None,
        }

    def histogram(self, edges: list[int]) -> dict[str, Any]:
        counts = [0] * (len(edges) - 1)
        outside = 0
        keys, cnts = self._sorted()
        if keys.size:
            idx = np.searchsorted(np.array(edges, dtype=np.int64), keys, side="right") - 1
            for i, c in zip(idx.tolist(), cnts.tolist(), strict=True):
                if 0 <= i < len(counts):
                    counts[i] += c
                else:
                    outside += c
        return {
            "edges": list(edges),
            "labels": [int_label(a, b) for a, b in itertools.pairwise(edges)],
            "counts": counts,
            "outside": outside,
        }


class FloatHistogram:
    """Fixed-bin histogram of a float column in [edges[0], edges[-1]] (last bin closed);
    nulls are `missing`, NaN and values out of range are `outside`."""

    def __init__(self, edges: list[float]):
        self.edges = list(edges)
        self._edges = np.array(edges, dtype=np.float64)
        self.counts = np.zeros(len(edges) - 1, dtype=np.int64)
        self.missing = 0
        self.outside = 0
        self.total = 0.0
        self.n = 0
        self.min: float | None = None
        self.max: float | None = None

    def add(self, column: pa.ChunkedArray | pa.Array) -> None:
        self.missing += column.null_count
        values = column.drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
        if values.size == 0:
            return
        finite = values[np.isfinite(values)]
        inside = finite[(finite >= self._edges[0]) & (finite <= self._edges[-1])]
        self.outside += int(values.size - inside.size)
        if inside.size == 0:
            return
        idx = np.searchsorted(self._edges, inside, side="right") - 1
        idx = np.minimum(idx, len(self.counts) - 1)  # the top edge belongs to the last bin
        self.counts += np.bincount(idx, minlength=len(self.counts))
        self.total += float(inside.sum())
        self.n += int(inside.size)
        lo, hi = float(inside.min()), float(inside.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)

    def to_json(self) -> dict[str, Any]:
        last = len(self.edges) - 2
        return {
            "edges": self.edges,
            "labels": [
                f"{a:.2f}-{b:.2f}" + ("]" if i == last else ")")
                for i, (a, b) in enumerate(itertools.pairwise(self.edges))
            ],
            "counts": self.counts.tolist(),
            "count": self.n,
            "missing": self.missing,
            "outside": self.outside,
            "mean": _r(self.total / self.n) if self.n else None,
            "min": _r(self.min),
            "max": _r(self.max),
        }


def _value_counts(column: pa.ChunkedArray, into: Counter[Any]) -> None:
    for item in pc.value_counts(column).to_pylist():
        into[item["values"]] += item["counts"]


# --- sections -----------------------------------------------------------------------------


def _ledger_stages(root: Path) -> list[str]:
    base = root / "ledger"
    found = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    return [s for s in STAGES if s in found] + [s for s in found if s not in STAGES]


def _drops(reader: _Reader, funnel: dict[str, Any] | None) -> dict[str, Any]:
    """{stage: {reason: {"count", "samples": [{"key", "detail"}]}}} from ledger/<stage>/."""
    out: dict[str, Any] = {}
    for stage in _ledger_stages(reader.root):
        counts: Counter[str] = Counter()
        samples: dict[str, list[tuple[str, str]]] = {}
        for _, table in reader.scan(reader.parts(f"ledger/{stage}"), ["key", "reason", "detail"]):
            if "key" not in table.column_names or "reason" not in table.column_names:
                continue
            if "detail" not in table.column_names:
                table = table.append_column("detail", pa.nulls(table.num_rows, pa.string()))
            for reason in pc.unique(table["reason"]).to_pylist():
                sub = table.filter(
                    pc.is_null(table["reason"])
                    if reason is None
                    else pc.equal(table["reason"], reason)
                )
                name = reason if reason is not None else "(none)"
                counts[name] += sub.num_rows
                idx = pc.select_k_unstable(
                    sub, k=N_SAMPLES, sort_keys=[("key", "ascending"), ("detail", "ascending")]
                )
                picked = sub.take(idx)
                cands = samples.setdefault(name, [])
                cands.extend(
                    (str(k), d or "")
                    for k, d in zip(
                        picked["key"].to_pylist(), picked["detail"].to_pylist(), strict=True
                    )
                )
                cands.sort()
                del cands[N_SAMPLES:]
        out[stage] = {
            reason: {
                "count": counts[reason],
                "samples": [{"key": k, "detail": d} for k, d in samples.get(reason, [])],
            }
            for reason in sorted(counts)
        }
        if isinstance(funnel, dict) and isinstance(funnel.get(stage), dict):
            expected = funnel[stage].get("dropped") or {}
            if dict(sorted(counts.items())) != dict(sorted(expected.items())):
                reader.warnings.append(
                    f"ledger/{stage} counts {dict(sorted(counts.items()))} differ from "
                    f"funnel.json {dict(sorted(expected.items()))} (parts of an earlier build?)"
                )
    if isinstance(funnel, dict):
        for stage, figures in sorted(funnel.items()):
            if stage not in out and isinstance(figures, dict) and figures.get("dropped"):
                reader.warnings.append(f"ledger/{stage}: missing, funnel.json counts drops")
            for f in figures.get("failed") or [] if isinstance(figures, dict) else []:
                # A failed part's rows reach no later stage: the build is partial.
                reader.warnings.append(
                    f"{stage}/{f.get('part')} FAILED, {f.get('rows')} input rows not built: "
                    f"{f.get('error')}"
                )
    return out


def _shard_paths(reader: _Reader, manifest: dict[str, Any] | None) -> list[Path]:
    """The manifest's shards when there is a manifest (stale files are not counted), else
    every Parquet file in shards/."""
    if isinstance(manifest, dict) and isinstance(manifest.get("shards"), list):
        paths = []
        for entry in manifest["shards"]:
            p = reader.root / "shards" / str(entry.get("path", ""))
            if p.is_file():
                paths.append(p)
            else:
                reader.warnings.append(f"shards/{entry.get('path')}: in the manifest, missing")
        return sorted(paths)
    return reader.parts("shards")


def _shards(reader: _Reader, manifest: dict[str, Any] | None) -> dict[str, Any]:
    lengths = IntDistribution()
    karma = IntDistribution()
    domains: dict[str, list[int]] = {}  # domain -> [docs, tokens]
    for _, table in reader.scan(_shard_paths(reader, manifest), ["domain", "n_tokens", "karma"]):
        names = table.column_names
        if "n_tokens" in names:
            lengths.add(table["n_tokens"])
        if "karma" in names:
            karma.add(table["karma"])
        if "domain" in names:
            if "n_tokens" not in names:
                table = table.append_column("n_tokens", pa.array([0] * table.num_rows, pa.int64()))
            grouped = table.group_by("domain").aggregate([("n_tokens", "sum"), ([], "count_all")])
            for dom, tok, n in zip(
                grouped["domain"].to_pylist(),
                grouped["n_tokens_sum"].to_pylist(),
                grouped["count_all"].to_pylist(),
                strict=True,
            ):
                acc = domains.setdefault(dom if dom is not None else "(none)", [0, 0])
                acc[0] += n
                acc[1] += tok or 0

    def top(order: int) -> list[dict[str, Any]]:
        ranked = sorted(domains.items(), key=lambda kv: (-kv[1][order], kv[0]))[:TOP_DOMAINS]
        return [{"domain": d, "docs": v[0], "tokens": v[1]} for d, v in ranked]

    return {
        "lengths": {**lengths.stats(), "histogram": lengths.histogram(LENGTH_EDGES)},
        "karma": {**karma.stats(), "histogram": karma.histogram(KARMA_EDGES)},
        "domains": {
            "distinct": len(domains),
            "docs": sum(v[0] for v in domains.values()),
            "tokens": sum(v[1] for v in domains.values()),
            "top_by_docs": top(0),
            "top_by_tokens": top(1),
        },
    }


def _wiki_stripped(
    reader: _Reader, paths: list[Path], names_seen: set[str]
) -> dict[str, Any] | None:
    if "wiki_stripped_chars" not in names_seen:
        return None
    docs = stripped_docs = stripped = chars = 0
    for _, table in reader.scan(paths, ["wiki_stripped_chars", "n_chars"]):
        if "wiki_stripped_chars" not in table.column_names:
            continue
        col = pc.fill_null(table["wiki_stripped_chars"], 0)
        docs += table.num_rows
        stripped_docs += int(pc.sum(pc.greater(col, 0)).as_py() or 0)
        stripped += int(pc.sum(col).as_py() or 0)
        if "n_chars" in table.column_names:
            chars += int(pc.sum(table["n_chars"]).as_py() or 0)
    return {
        "docs": docs,
        "docs_stripped": stripped_docs,
        "stripped_chars": stripped,
        "chars": chars,
        # n_chars is read as the text that remained, so the removed share is s / (s + n_chars).
        "share_chars": _r(stripped / (stripped + chars)) if stripped + chars else None,
        "share_docs": _r(stripped_docs / docs) if docs else None,
    }


def _docs_and_wiki(reader: _Reader, drops: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    labels: Counter[Any] = Counter()
    scores = FloatHistogram(SCORE_EDGES)
    overlap: dict[str, Any] = {}
    stripped: dict[str, Any] = {}
    n_docs = 0
    for folder in ("docs", "filtered"):
        paths = reader.parts(folder)
        names_seen: set[str] = set()
        wiki = FloatHistogram(SCORE_EDGES)
        wanted = ["wiki_overlap"] + (["lang", "lang_score"] if folder == "docs" else [])
        for path in paths:
            names = reader.columns_of(path)
            if names is None:
                continue
            names_seen.update(names)
            for table in reader.batches(path, [c for c in wanted if c in names]):
                if folder == "docs":
                    n_docs += table.num_rows
                    if "lang" in table.column_names:
                        _value_counts(table["lang"], labels)
                    if "lang_score" in table.column_names:
                        scores.add(table["lang_score"])
                if "wiki_overlap" in table.column_names:
                    wiki.add(table["wiki_overlap"])
        # None: no part has the column; else its distribution over the non-null values.
        overlap[folder] = wiki.to_json() if "wiki_overlap" in names_seen else None
        stripped[folder] = _wiki_stripped(reader, paths, names_seen)
    language = {
        "source": "docs/ (every extracted document, before filtering)",
        "docs": n_docs,
        "labels": [
            {"lang": lang if lang is not None else "(none)", "docs": n}
            for lang, n in sorted(labels.items(), key=lambda kv: (-kv[1], str(kv[0])))
        ],
        "lang_score": scores.to_json(),
    }
    filter_drops = drops.get("filter", {})
    wikipedia = {
        "dropped": {r: filter_drops.get(r, {}).get("count", 0) for r in WIKI_REASONS},
        "overlap": overlap,
        "stripped": stripped,
    }
    return language, wikipedia


def _duplicates(reader: _Reader) -> dict[str, Any]:
    drops: Counter[str] = Counter()
    kept: Counter[str] = Counter()  # kept id -> documents dropped in its favour
    for _, table in reader.scan(reader.parts("ledger/dedup"), ["reason", "detail"]):
        if "reason" not in table.column_names or "detail" not in table.column_names:
            continue
        for reason in DEDUP_REASONS:
            sub = table.filter(pc.equal(table["reason"], reason))
            drops[reason] += sub.num_rows
            _value_counts(sub["detail"], kept)
    sizes: Counter[int] = Counter(1 + n for n in kept.values())
    largest = sorted(kept.items(), key=lambda kv: (-kv[1], str(kv[0])))[:10]
    return {
        "drops": {r: drops[r] for r in DEDUP_REASONS},
        "clusters": len(kept),
        "docs_in_clusters": sum(1 + n for n in kept.values()),
        "sizes": [{"size": s, "clusters": sizes[s]} for s in sorted(sizes)],
        "largest": [{"kept_id": str(k), "size": 1 + n} for k, n in largest],
    }


def _crawl(reader: _Reader) -> dict[str, Any]:
    status: Counter[Any] = Counter()
    error: Counter[Any] = Counter()
    n = 0
    for _, table in reader.scan(reader.parts("crawl/fetches"), ["status", "error"]):
        n += table.num_rows
        if "status" in table.column_names:
            _value_counts(table["status"], status)
        if "error" in table.column_names:
            _value_counts(table["error"], error)

    def listing(c: Counter[Any], field: str, none: str) -> list[dict[str, Any]]:
        rows = [(none if k is None else str(k), v) for k, v in c.items()]
        return [{field: k, "count": v} for k, v in sorted(rows, key=lambda kv: (-kv[1], kv[0]))]

    return {
        "fetches": n,
        "by_status": listing(status, "status", "none"),
        "by_error": listing(error, "error", "ok"),
    }


def _throughput(reader: _Reader) -> dict[str, Any]:
    """Per step: counts and seconds from the done markers, and, when progress files exist,
    wall seconds per part (updated - started) and items/s."""
    steps: list[dict[str, Any]] = []
    done_dir = reader.root / "_done"
    step_names = (
        sorted(p.name for p in done_dir.iterdir() if p.is_dir()) if done_dir.is_dir() else []
    )
    progress_dir = reader.root / PROGRESS_DIR
    if progress_dir.is_dir():
        step_names = sorted(
            set(step_names) | {p.name for p in progress_dir.iterdir() if p.is_dir()}
        )

    def order(step: str) -> tuple[int, bool, str]:
        stage = STEPS.get(step)  # a step sits right after its stage (harvest_file, ...)
        rank = STAGES.index(stage) if stage in STAGES else len(STAGES)
        return (rank, step != stage, step)

    for step in sorted(step_names, key=order):
        parts = n_in = n_out = 0
        seconds: float | None = None
        cpu: float | None = None
        for path in sorted((done_dir / step).glob("*.json")):
            marker = reader.json(path)
            stats = marker.get("stats") if isinstance(marker, dict) else None
            if not isinstance(stats, dict):
                continue
            parts += 1
            n_in += int(stats.get("in") or 0)
            n_out += int(stats.get("out") or 0)
            extra = stats.get("extra") or {}
            for key in ("crawl_seconds", "seconds"):
                if isinstance(extra.get(key), int | float):
                    seconds = (seconds or 0.0) + float(extra[key])
                    break
            if isinstance(extra.get("cpu_seconds"), int | float):
                cpu = (cpu or 0.0) + float(extra["cpu_seconds"])
        entry: dict[str, Any] = {
            "step": step,
            "stage": STEPS.get(step, step),
            "parts": parts,
            "in": n_in,
            "out": n_out,
            "seconds": _r(seconds, 3),
            "cpu_seconds": _r(cpu, 3),
            "items_per_s": _r(n_in / seconds, 2) if seconds else None,
            "progress": None,
        }
        records = (
            [reader.json(p) for p in sorted((progress_dir / step).glob("*.json"))]
            if (progress_dir / step).is_dir()
            else []
        )
        records = [r for r in records if isinstance(r, dict)]
        if records:
            starts = [float(r["started"]) for r in records if _is_num(r.get("started"))]
            ends = [float(r["updated"]) for r in records if _is_num(r.get("updated"))]
            items = sum(int(r.get("done") or 0) for r in records)
            part_seconds = sum(
                max(float(r["updated"]) - float(r["started"]), 0.0)
                for r in records
                if _is_num(r.get("started")) and _is_num(r.get("updated"))
            )
            wall = (max(ends) - min(starts)) if starts and ends else None
            entry["progress"] = {
                "parts": len(records),
                "finished": sum(bool(r.get("finished")) for r in records),
                "items": items,
                "started": min(starts) if starts else None,
                "updated": max(ends) if ends else None,
                "part_seconds": _r(part_seconds, 3),
                "wall_seconds": _r(wall, 3),
                "items_per_s_wall": _r(items / wall, 2) if wall else None,
                "items_per_s_part": _r(items / part_seconds, 2) if part_seconds else None,
            }
        steps.append(entry)
    return {"steps": steps}  # a list: pipeline order survives sort_keys


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _manifest(manifest: Any) -> dict[str, Any] | None:
    if not isinstance(manifest, dict):
        return None
    shards: list[Any] = manifest["shards"] if isinstance(manifest.get("shards"), list) else []
    by_split: dict[str, dict[str, int]] = {}
    for entry in shards:
        acc = by_split.setdefault(
            str(entry.get("split", "?")), dict.fromkeys(("shards", "rows", "tokens", "bytes"), 0)
        )
        acc["shards"] += 1
        for key in ("rows", "tokens", "bytes"):
            acc[key] += int(entry.get(key) or 0)
    return {
        "name": manifest.get("name"),
        "config_fingerprint": manifest.get("config_fingerprint"),
        "code_version": manifest.get("code_version"),
        "schema_version": manifest.get("schema_version"),
        "tokenizer": manifest.get("tokenizer"),
        "totals": manifest.get("totals"),
        "split": manifest.get("split"),
        "columns": manifest.get("columns"),
        "n_shards": len(shards),
        "by_split": dict(sorted(by_split.items())),
    }


def _eval_overlap(reader: _Reader) -> dict[str, Any] | None:
    data = reader.json(reader.root / "overlap.json")
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("eval_sets"), dict):
        reader.warnings.append("overlap.json: no eval_sets mapping; left out")
        return None
    return data


def summarize(root: Path) -> dict[str, Any]:
    """Every figure of the report for the build folder `root`, as a JSON-ready dict."""
    root = Path(root)
    warnings: list[str] = []
    reader = _Reader(root, warnings)
    funnel = reader.json(root / "funnel.json")
    manifest_raw = reader.json(root / "shards" / "manifest.json")
    drops = _drops(reader, funnel)
    shards = _shards(reader, manifest_raw)
    language, wikipedia = _docs_and_wiki(reader, drops)
    manifest = _manifest(manifest_raw)
    return {
        "version": SUMMARY_VERSION,
        "corpus": {
            "name": manifest["name"] if manifest else None,
            "config_fingerprint": manifest["config_fingerprint"] if manifest else None,
        },
        "funnel": funnel,
        "drops": drops,
        "lengths": shards["lengths"],
        "karma": shards["karma"],
        "domains": shards["domains"],
        "language": language,
        "duplicates": _duplicates(reader),
        "wikipedia": wikipedia,
        "eval_overlap": _eval_overlap(reader),
        "crawl": _crawl(reader),
        "throughput": _throughput(reader),
        "manifest": manifest,
        "warnings": sorted(warnings),
    }
