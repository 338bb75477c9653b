"""Harvest's per-file step ("harvest_file"): every line of one dump judged once, survivors
written to harvest/files/<key>.parquet with their links part, drops to
ledger/harvest/file-<key>.parquet, under a done marker keyed by a stamp of the dump."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.config import HarvestConfig
from pipeline.core.io import atomic_write_json, sha256_file, temp_path, write_table
from pipeline.core.ledger import StageStats
from pipeline.core.stage import run_marked
from pipeline.harvest.dumps import DumpReader
from pipeline.harvest.rules import (
    FILE_STAGE,
    HEAD_DECODER,
    STAGE,
    VERSION,
    Rules,
    clean_text,
    judge,
    parse_line,
    part_of,
    post_id_of,
    rules_fingerprint,
)
from schemas.records import CANDIDATE_SCHEMA, LEDGER_SCHEMA

log = logging.getLogger(__name__)


def file_key(path: Path) -> str:
    """Name of a dump's cache entries: readable file name + hash of its absolute path."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", path.name)
    digest = hashlib.blake2b(str(path.resolve()).encode(), digest_size=4).hexdigest()
    return f"{name}-{digest}"


def candidates_rel(key: str) -> str:
    return f"harvest/files/{key}.parquet"


def file_ledger_rel(key: str) -> str:
    return f"ledger/{STAGE}/file-{key}.parquet"


class _StreamingLedger:
    """Ledger rows written in input order, a batch at a time: a month of drops (tens of
    millions of rows) never sits in memory as Python objects."""

    BATCH = 1 << 16

    def __init__(self, path: Path):
        self.path = path
        self.tmp = temp_path(path)
        self.writer = pq.ParquetWriter(
            self.tmp, LEDGER_SCHEMA, compression="zstd", write_statistics=True
        )
        self.keys: list[str] = []
        self.reasons: list[str] = []
        self.details: list[str] = []
        self.counts: Counter[str] = Counter()

    def add(self, key: str, reason: str, detail: str) -> None:
        self.keys.append(key)
        self.reasons.append(reason)
        self.details.append(detail)
        if len(self.keys) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        if self.keys:
            table = pa.table(
                {"key": self.keys, "reason": self.reasons, "detail": self.details},
                schema=LEDGER_SCHEMA,
            )
            self.writer.write_table(table, row_group_size=self.BATCH)
            self.counts.update(self.reasons)
            # Cleared in place: the harvest loop holds their bound append methods.
            self.keys.clear()
            self.reasons.clear()
            self.details.clear()

    def close(self) -> None:
        self.flush()
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.writer.close()
        self.tmp.unlink(missing_ok=True)


def _rows_to_batch(rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
    columns: list[Any] = list(zip(*rows)) if rows else [[] for _ in CANDIDATE_SCHEMA.names]
    return pa.RecordBatch.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, CANDIDATE_SCHEMA)],
        schema=CANDIDATE_SCHEMA,
    )


def harvest_file(
    path: Path,
    root: Path,
    cfg: HarvestConfig,
    rules: Rules | None = None,
    karma_shortcut: bool = True,
) -> StageStats:
    """Judge every line of one dump file (the work of one harvest_file part).

    `karma_shortcut=False` decodes every line fully; the outputs are the same (tested)."""
    rules = rules or Rules(cfg)
    root = Path(root)
    key = file_key(path)
    n_parts = rules.n_parts
    label = path.name
    ledger = _StreamingLedger(root / file_ledger_rel(key))
    part_cands = [0] * n_parts
    rows: list[tuple[Any, ...]] = []
    batches: list[pa.RecordBatch] = []
    domain_part: dict[str, int] = {}
    n_in = 0
    reader = DumpReader(path)
    # The loop below runs once per input line (tens of millions per month): names are bound
    # locally and drops are appended inline, which is what keeps it above 100k lines/s.
    add_key, add_reason, add_detail = (
        ledger.keys.append,
        ledger.reasons.append,
        ledger.details.append,
    )
    add_row = rows.append
    karma_first = rules.per_post and karma_shortcut
    min_karma = rules.min_karma
    head_decode = HEAD_DECODER.decode
    try:
        for batch in reader.batches():
            for line in batch:
                n_in += 1
                if karma_first:
                    # Most lines fail the karma rule, which comes first and needs only id and
                    # score: a decoder that materialises just those (and `kind`, which marks
                    # an API wrapper) settles them at half the cost of a full decode. It
                    # validates the whole line like the full decoder does.
                    try:
                        head = head_decode(line)
                    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                        head = None
                    if (
                        head is not None
                        and type(head.score) is int
                        and head.score < min_karma
                        and head.kind is None
                        and type(head.id) is str
                        and head.id
                        and head.id.isascii()
                    ):
                        add_key(head.id)
                        add_reason("low_karma")
                        add_detail(str(head.score))
                        continue
                try:
                    post = parse_line(line)
                except ValueError as err:
                    add_key(f"{label}:{n_in}")
                    add_reason("bad_json")
                    add_detail(str(err)[:200])
                    continue
                k = post.id
                if type(k) is not str or not k or not k.isascii():
                    pid = post_id_of(post)
                    k = clean_text(pid) if pid is not None else f"{label}:{n_in}"
                try:
                    verdict = judge(post, rules, k)
                except Exception as err:  # noqa: BLE001 -- an unforeseen shape costs one row
                    verdict = ("bad_record", f"{type(err).__name__}: {err}"[:200])
                if len(verdict) == 2:
                    add_key(k)
                    add_reason(verdict[0])  # type: ignore[arg-type]
                    add_detail(verdict[1])  # type: ignore[arg-type]
                    continue
                domain = verdict[1]
                part = domain_part.get(domain)  # type: ignore[call-overload]
                if part is None:
                    part = domain_part[domain] = part_of(domain, n_parts)  # type: ignore[arg-type]
                part_cands[part] += 1
                add_row((part, *verdict))
            if len(rows) >= 1 << 16:
                batches.append(_rows_to_batch(rows))
                rows.clear()
            if len(ledger.keys) >= ledger.BATCH:
                ledger.flush()
        for damage in reader.damages:
            # One item per damaged region: it stands for the lines lost in it.
            n_in += 1
            add_key(path.name)
            add_reason("corrupt_file")
            add_detail(damage.detail())
        batches.append(_rows_to_batch(rows))
        table = pa.Table.from_batches(batches, schema=CANDIDATE_SCHEMA)
        table = table.sort_by(
            [
                ("part", "ascending"),
                ("url", "ascending"),
                ("created", "ascending"),
                ("post_id", "ascending"),
            ]
        )
        write_table(root / candidates_rel(key), table, row_group_size=1 << 14)
        ledger.close()
    except BaseException:
        ledger.abort()
        raise
    dropped = ledger.counts
    # Drops before grouping have no links part; they are spread evenly (deterministically) over
    # the parts so that the parts' stats sum to the file's lines. Their rows stay in the file's
    # own ledger.
    part_drops: list[dict[str, int]] = [{} for _ in range(n_parts)]
    for reason, n in sorted(dropped.items()):
        q, r = divmod(n, n_parts)
        for i in range(n_parts):
            share = q + (1 if i < r else 0)
            if share:
                part_drops[i][reason] = share
    n_out = table.num_rows
    return StageStats(
        stage=FILE_STAGE,
        part=key,
        n_in=n_in,
        n_out=n_out,
        dropped=dropped,
        outputs=[candidates_rel(key), file_ledger_rel(key)],
        extra={
            "path": str(path),
            "format": reader.format,
            "lines": reader.n_lines,
            "damage": reader.damage.detail() if reader.damage else None,
            "damaged_regions": len(reader.damages),
            "part_candidates": part_cands,
            "part_drops": {str(i): c for i, c in enumerate(part_drops) if c},
        },
    )


STAMP_SAMPLE = 1 << 20


def stamp_rel(key: str) -> str:
    return f"harvest/stamps/{key}.json"


def dump_stamp(path: Path, full_hash: bool = False) -> dict[str, Any]:
    """What identifies a dump's content for the done marker, cheaply: size, mtime and hashes of
    its first and last MiB (or of everything with full_hash). Hashing every month's whole dump
    (tens of GB each) on every scheduled build would cost more than the new month itself."""
    st = path.stat()
    stamp: dict[str, Any] = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if full_hash:
        stamp["sha256"] = sha256_file(path)
        return stamp
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(STAMP_SAMPLE))
        if st.st_size > STAMP_SAMPLE:
            f.seek(max(STAMP_SAMPLE, st.st_size - STAMP_SAMPLE))
            h.update(f.read(STAMP_SAMPLE))
    stamp["head_tail_sha256"] = h.hexdigest()
    return stamp


def write_if_changed(path: Path, obj: Any) -> None:
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    if path.is_file() and path.read_bytes() == data:
        return  # same bytes: the merge marker's input hash stays valid
    atomic_write_json(path, obj)


def run_file(path: Path, root: Path, cfg: HarvestConfig, rules: Rules | None = None) -> StageStats:
    """The per-file step with its done marker: skipped when the file and rules are unchanged.

    The marker's input is a small stamp file (see dump_stamp), rewritten only when it changes."""
    root = Path(root)
    key = file_key(path)
    stamp = root / stamp_rel(key)
    write_if_changed(stamp, dump_stamp(path, cfg.full_input_hash))
    return run_marked(
        root,
        FILE_STAGE,
        key,
        [stamp],
        rules_fingerprint(cfg),
        VERSION,
        lambda: harvest_file(path, root, cfg, rules),
    )
