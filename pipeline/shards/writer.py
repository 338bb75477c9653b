"""The shards writer: dedup parts -> train/val Parquet shards, manifest.json and the dataset card."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import pipeline
from pipeline.core.config import CorpusConfig
from pipeline.core.io import (
    atomic_write_bytes,
    atomic_write_json,
    sha256_file,
)
from pipeline.core.ledger import StageStats
from pipeline.core.sources import count_by_source
from pipeline.core.stage import run_marked
from pipeline.core.tokenizer import EOT_ID, get_encoding, ranks_sha256
from pipeline.shards.assign import SPLITS, is_val, shard_count
from pipeline.shards.gather import write_shard
from pipeline.shards.spill import Plan, spill_part
from schemas.manifest import MANIFEST_SCHEMA_VERSION, build_status, validate_manifest
from schemas.records import shard_schema

# 2: documents spread over shards by a seeded hash of id and shuffled within each shard
# (no global concatenation), tokenized per dedup part
VERSION = 2
STAGE = "shards"


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


def _count(parts: list[Path], val_fraction: float) -> dict[str, int]:
    """Documents per split, from the id column alone."""
    counts = dict.fromkeys(SPLITS, 0)
    for p in parts:
        for batch in pq.ParquetFile(p).iter_batches(batch_size=1 << 16, columns=["id"]):
            n_val = sum(is_val(i, val_fraction) for i in batch.column("id").to_pylist())
            counts["val"] += n_val
            counts["train"] += batch.num_rows - n_val
    return counts


def _build(
    root: Path, parts: list[Path], cfg: CorpusConfig, failed: list[dict[str, Any]] | None = None
) -> StageStats:
    scfg = cfg.shards
    enc = get_encoding(cfg.tokenizer)
    vocab_size = enc.n_vocab
    schema = shard_schema(vocab_size, scfg.include_text)
    docs = _count(parts, scfg.val_fraction)
    plan = Plan(
        counts={s: shard_count(docs[s], scfg.max_rows_per_shard) for s in SPLITS},
        val_fraction=scfg.val_fraction,
        seed=scfg.seed,
    )
    spill_dir = root / "_spill" / STAGE
    shutil.rmtree(spill_dir, ignore_errors=True)
    # Tokenizing is most of the work and tiktoken releases the GIL: threads, no pickling.
    workers = max(1, cfg.runner.max_workers)
    with ThreadPoolExecutor(workers) as pool:
        spilled = list(pool.map(lambda p: spill_part(p, spill_dir, plan, enc, schema), parts))
    routed = {s: sum(r[s] for r in spilled) for s in SPLITS}
    if routed != docs:
        raise AssertionError(f"{STAGE}: {routed} documents routed, {docs} counted")
    jobs = [(s, i) for s in SPLITS for i in range(plan.counts[s])]

    def one_shard(job: tuple[str, int]) -> dict[str, Any]:
        split, index = job
        rel = f"shards/{shard_file_name(split, index, plan.counts[split])}"
        path = root / rel
        files = sorted((spill_dir / f"{split}-{index:05d}").glob("*.arrow"))
        rows, tokens = write_shard(
            files, path, schema, scfg.seed, split, index, scfg.row_group_size
        )
        return {
            "path": rel.split("/", 1)[1],
            "split": split,
            "rows": rows,
            "tokens": tokens,
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
        }

    with ThreadPoolExecutor(workers) as pool:
        entries = list(pool.map(one_shard, jobs))
    shutil.rmtree(spill_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        spill_dir.parent.rmdir()  # only when no other stage spills there
    stats = StageStats(stage=STAGE, part="all", n_in=docs["train"] + docs["val"])
    wanted = {e["path"] for e in entries}
    for stale in (root / "shards").glob("*.parquet"):
        if stale.name not in wanted:
            stale.unlink()
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
        "by_source": count_by_source(
            s
            for p in parts
            for batch in pq.ParquetFile(p).iter_batches(batch_size=1 << 16, columns=["source"])
            for s in batch.column("source").to_pylist()
        ),
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
