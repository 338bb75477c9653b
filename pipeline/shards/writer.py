"""The shards writer: dedup parts -> train/val Parquet shards, manifest.json and the dataset card."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import pipeline
from pipeline.core.config import CorpusConfig
from pipeline.core.io import (
    atomic_write_bytes,
    atomic_write_json,
    read_table,
    sha256_file,
    write_table,
)
from pipeline.core.ledger import StageStats
from pipeline.core.sources import count_by_source
from pipeline.core.stage import run_marked
from pipeline.core.tokenizer import EOT_ID, encode_docs, get_encoding, ranks_sha256
from schemas.manifest import MANIFEST_SCHEMA_VERSION, build_status, validate_manifest
from schemas.records import SHARD_DOC_COLUMNS, shard_schema

VERSION = 1
STAGE = "shards"
SPLITS = ("train", "val")
_SOURCE_COLUMNS = [*SHARD_DOC_COLUMNS, "text"]


def is_val(doc_id: str, val_fraction: float) -> bool:
    """Split by a hash of the id only, so a document keeps its split whatever else changes."""
    if val_fraction <= 0:
        return False
    h = int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "big")
    return h / 2**64 < val_fraction


def shard_file_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def config_fingerprint(cfg: CorpusConfig) -> str:
    """Fingerprint of everything that shapes the corpus content: not where the build lives,
    where its dumps lie, which runner ran it, or which evaluation sets the audit reads."""
    content = cfg.model_dump(mode="json", exclude={"out_dir", "runner", "name", "overlap"})
    content["harvest"].pop("inputs", None)
    content["crawl"].pop("proxy", None)
    blob = json.dumps(content, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _load_docs(parts: list[Path]) -> pa.Table:
    tables = [read_table(p, columns=_SOURCE_COLUMNS) for p in parts]
    if not tables:
        return pa.table({c: [] for c in _SOURCE_COLUMNS})
    table = pa.concat_tables(tables)
    return table.take(pc.sort_indices(table, sort_keys=[("id", "ascending")]))


def _tokens_array(token_lists: list[list[int]], vocab_size: int) -> pa.Array:
    token_type = pa.uint16() if vocab_size <= 2**16 else pa.uint32()
    return pa.array(token_lists, type=pa.list_(token_type))


def _write_split(
    root: Path, split: str, docs: pa.Table, cfg: CorpusConfig, vocab_size: int
) -> list[dict[str, Any]]:
    n = docs.num_rows
    if n == 0:
        return []
    count = math.ceil(n / cfg.shards.max_rows_per_shard)
    enc = get_encoding(cfg.tokenizer)
    schema = shard_schema(vocab_size, cfg.shards.include_text)
    entries = []
    # Round-robin keeps shards equal in size to within one row.
    for index in range(count):
        shard = docs.take(pa.array(np.arange(index, n, count)))
        texts = shard.column("text").to_pylist()
        token_lists = encode_docs(enc, texts)
        tokens = _tokens_array(token_lists, vocab_size)
        n_tokens = pa.array([len(t) for t in token_lists], pa.int32())
        cols = {name: shard.column(name) for name in SHARD_DOC_COLUMNS}
        cols["n_tokens"] = n_tokens
        cols["tokens"] = tokens
        if cfg.shards.include_text:
            cols["text"] = shard.column("text")
        table = pa.table(cols).cast(schema)
        rel = f"shards/{shard_file_name(split, index, count)}"
        path = root / rel
        write_table(path, table, row_group_size=cfg.shards.row_group_size)
        entries.append(
            {
                "path": rel.split("/", 1)[1],
                "split": split,
                "rows": table.num_rows,
                "tokens": int(pc.sum(n_tokens).as_py() or 0),
                "bytes": path.stat().st_size,
                "sha256": sha256_file(path),
            }
        )
    return entries


def dataset_card(manifest: dict[str, Any], cfg: CorpusConfig) -> str:
    splits = sorted({s["split"] for s in manifest["shards"]}, key=SPLITS.index)
    hf_split = {"train": "train", "val": "validation"}
    data_files = "\n".join(f'  - split: {hf_split[s]}\n    path: "{s}-*.parquet"' for s in splits)
    t = manifest["totals"]
    langs = sorted(set(cfg.filter.langs)) or ["en"]
    front = (
        "---\n"
        "configs:\n"
        "- config_name: default\n"
        f"  data_files:\n{data_files}\n"
        f"language: [{', '.join(langs)}]\n"
        "task_categories: [text-generation]\n"
        f"pretty_name: {cfg.name}\n"
        "license: other\n"
        "---\n"
    )
    body = f"""
# {cfg.name}

A WebText-like corpus built by webtext {manifest["code_version"]}: the main text of pages
linked from Reddit posts with at least {cfg.harvest.min_karma} karma, language-filtered
({", ".join(langs)}, lid.176 score >= {cfg.filter.min_lang_score}), Wikipedia removed,
deduplicated (exact + MinHash, threshold {cfg.dedup.threshold}), tokenized with GPT-2 BPE
({manifest["tokenizer"]["name"]}, EOT {manifest["tokenizer"]["eot_id"]} after every document).

| split | documents | tokens |
|---|---|---|
| train | {t["train_rows"]:,} | {t["train_tokens"]:,} |
| validation | {t["val_rows"]:,} | {t["val_tokens"]:,} |

Columns: {", ".join(manifest["columns"])}. `tokens` is the GPT-2 BPE of `text` followed by
the end-of-text id; `n_tokens` counts it too. The validation split is chosen by a hash of `id`,
so a document keeps its split across rebuilds. Config fingerprint
`{manifest["config_fingerprint"]}`; per-shard sizes and sha256 sums are in `manifest.json`.

The texts are third-party web pages; check the terms of the sites before redistributing.
"""
    return front + body


def _build(
    root: Path, parts: list[Path], cfg: CorpusConfig, failed: list[dict[str, Any]] | None = None
) -> StageStats:
    docs = _load_docs(parts)
    stats = StageStats(stage=STAGE, part="all", n_in=docs.num_rows)
    vocab_size = get_encoding(cfg.tokenizer).n_vocab
    ids = docs.column("id").to_pylist()
    val_mask = np.array([is_val(i, cfg.shards.val_fraction) for i in ids], dtype=bool)
    rng = np.random.default_rng(cfg.shards.seed)
    entries: list[dict[str, Any]] = []
    for split, mask in (("train", ~val_mask), ("val", val_mask)):
        idx = np.flatnonzero(mask)
        idx = idx[rng.permutation(len(idx))]
        entries += _write_split(root, split, docs.take(pa.array(idx, pa.int64())), cfg, vocab_size)
    wanted = {e["path"] for e in entries}
    for stale in (root / "shards").glob("*.parquet"):
        if stale.name not in wanted:
            stale.unlink()
    schema = shard_schema(vocab_size, cfg.shards.include_text)
    totals = {
        "rows": sum(e["rows"] for e in entries),
        "tokens": sum(e["tokens"] for e in entries),
        "bytes": sum(e["bytes"] for e in entries),
    }
    for split in SPLITS:
        totals[f"{split}_rows"] = sum(e["rows"] for e in entries if e["split"] == split)
        totals[f"{split}_tokens"] = sum(e["tokens"] for e in entries if e["split"] == split)
    manifest = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "name": cfg.name,
        "tokenizer": {
            "name": cfg.tokenizer.name,
            "vocab_size": vocab_size,
            "eot_id": EOT_ID,
            "ranks_sha256": ranks_sha256(cfg.tokenizer),
            "token_dtype": "uint16" if vocab_size <= 2**16 else "uint32",
        },
        "columns": schema.names,
        "split": {
            "method": "blake2b(id) < val_fraction",
            "val_fraction": cfg.shards.val_fraction,
            "shuffle_seed": cfg.shards.seed,
        },
        "shards": entries,
        "totals": totals,
        "config_fingerprint": config_fingerprint(cfg),
        "code_version": pipeline.__version__,
        **build_status(failed),
    }
    validate_manifest(manifest)
    atomic_write_json(root / "shards" / "manifest.json", manifest)
    atomic_write_bytes(root / "shards" / "README.md", dataset_card(manifest, cfg).encode())
    stats.n_out = totals["rows"]
    stats.outputs = [f"shards/{e['path']}" for e in entries] + [
        "shards/manifest.json",
        "shards/README.md",
    ]
    stats.extra = {
        "tokens": totals["tokens"],
        "shards": len(entries),
        "by_source": count_by_source(docs.column("source").to_pylist()),
    }
    return stats


def run(
    parts: list[Path],
    root: Path,
    cfg: CorpusConfig,
    failed_parts: list[dict[str, Any]] | None = None,
) -> StageStats:
    """Write every shard, the manifest and the card from the dedup parts. `failed_parts`
    ({stage, part, rows}, from the flow) makes the manifest say the build is partial."""
    root = Path(root)
    parts = sorted(Path(p) for p in parts)
    status = build_status(failed_parts)
    # The card quotes thresholds of every stage, so the whole content config is the key.
    fp = f"{cfg.name}:{config_fingerprint(cfg)}"
    if status["partial"]:
        fp += ":partial:" + json.dumps(status["failed_parts"], sort_keys=True)
    return run_marked(
        root, STAGE, "all", parts, fp, VERSION, lambda: _build(root, parts, cfg, failed_parts)
    )
