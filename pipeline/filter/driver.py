"""The filter driver: one docs part -> filtered part and ledger part.

Before the rules run, two signals that need a reference are computed here when configured:
copied Wikipedia paragraphs are stripped (pipeline.filter.wiki_strip; `wiki_overlap`,
`wiki_stripped_chars`, and the length figures of the text that is left), and documents are
matched against evaluation sets (pipeline.filter.decontaminate).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import tiktoken

from pipeline.core import stage
from pipeline.core.config import CorpusConfig
from pipeline.core.ledger import Ledger, StageStats
from pipeline.core.ngrams import PowerTables
from pipeline.core.rowgroups import RowGroupWriter
from pipeline.core.tokenizer import get_encoding
from pipeline.filter.decontaminate import EvalIndex
from pipeline.filter.rules import check
from pipeline.filter.wiki_index import ensure_index, load_index, read_meta
from pipeline.filter.wiki_strip import strip_paragraphs
from schemas.records import FILTERED_SCHEMA

VERSION = 2  # 2: Wikipedia paragraphs stripped (wikipedia_copy), eval_overlap, FILTERED_SCHEMA
STAGE = "filter"
# Documents whose paragraphs are looked up at once.
STRIP_BATCH = 256
# Documents read and judged at a time (a multiple of STRIP_BATCH: the same lookups as before).
READ_BATCH = 1024
# A row's count of removed paragraphs, for the stats (not a column).
REMOVED = "_wiki_removed_paragraphs"


def _strip_wikipedia(
    rows: list[dict[str, Any]],
    index: Any,
    cfg: CorpusConfig,
    enc: tiktoken.Encoding,
    tables: PowerTables,
) -> None:
    """Strip copied paragraphs from the rows in place."""
    wcfg = cfg.wikipedia
    for start in range(0, len(rows), STRIP_BATCH):
        batch = rows[start : start + STRIP_BATCH]
        results = strip_paragraphs(
            [r["text"] for r in batch], index, wcfg.ngram, wcfg.paragraph_overlap, tables
        )
        for row, res in zip(batch, results, strict=True):
            # float32 like the column, so a rule or a reader sees the stored value.
            row["wiki_overlap"] = float(pa.scalar(res.overlap, pa.float32()).as_py())
            row["wiki_stripped_chars"] = len(row["text"]) - len(res.text)
            row[REMOVED] = len(res.removed)
            if res.stripped:
                row["text"] = res.text
                row["n_chars"] = len(res.text)
                row["n_words"] = len(res.text.split())
                row["n_tokens"] = len(enc.encode_ordinary(res.text))


def _work(
    docs_part: Path, root: Path, cfg: CorpusConfig, part: str, index_dir: Path | None
) -> StageStats:
    """Streamed: READ_BATCH documents at a time are judged and the kept ones written as they
    come (row groups as io.write_table would make them), so memory holds a batch and one
    output row group, never the part."""
    index = load_index(index_dir) if index_dir is not None else None
    enc = get_encoding(cfg.tokenizer)
    tables = PowerTables()
    dcfg = cfg.decontaminate
    evals = EvalIndex.build(dcfg.eval_sets, dcfg.ngram) if dcfg.eval_sets else None
    ledger = Ledger(root, STAGE, part)
    out = root / "filtered" / f"{part}.parquet"
    n_in = 0
    stripped: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    with RowGroupWriter(out, FILTERED_SCHEMA) as writer:
        for batch in pq.ParquetFile(docs_part).iter_batches(batch_size=READ_BATCH):
            rows = batch.to_pylist()
            n_in += len(rows)
            if index is not None:
                _strip_wikipedia(rows, index, cfg, enc, tables)
            else:
                for row in rows:
                    row["wiki_stripped_chars"] = None
            if evals is not None:
                details = evals.details([r["text"] for r in rows], dcfg.min_shared)
                for row, detail in zip(rows, details, strict=True):
                    row["eval_overlap"] = detail
            for row in rows:
                failed = check(row, cfg.filter)
                if failed is not None:
                    ledger.drop(row["url"], *failed)
                    continue
                writer.add(row)
                sources[row.get("source") or "live"] += 1
                if row.get(REMOVED):
                    # What stripping took out of the documents that stay (a document dropped
                    # whole is counted by its drop reason).
                    stripped.update(
                        documents=1,
                        paragraphs=row[REMOVED],
                        chars=row["wiki_stripped_chars"],
                    )
    ledger_path = ledger.write()
    stats = StageStats(stage=STAGE, part=part, n_in=n_in, n_out=writer.rows)
    stats.extra["by_source"] = dict(sorted(sources.items()))
    stats.dropped.update(ledger.counts)
    stats.outputs = [str(out.relative_to(root)), str(ledger_path.relative_to(root))]
    if index is not None:
        stats.extra["stripped"] = {k: stripped[k] for k in ("documents", "paragraphs", "chars")}
    return stats


def config_fingerprint(cfg: CorpusConfig, index_dir: Path | None) -> str:
    """The sections the filter reads, with the content of the Wikipedia index (from its meta):
    a new index re-filters. The evaluation files are inputs of the part instead (run_part),
    judged by the reuse rule, so a no-op rebuild does not read them for every part."""
    blob: dict[str, Any] = {"filter": cfg.filter.fingerprint()}
    if index_dir is not None:
        meta = read_meta(index_dir)
        blob["wikipedia"] = {
            "index_sha256": meta["sha256"],
            "ngram": cfg.wikipedia.ngram,
            "paragraph_overlap": cfg.wikipedia.paragraph_overlap,
            "tokenizer": cfg.tokenizer.fingerprint(),
        }
    if cfg.decontaminate.eval_sets:
        blob["decontaminate"] = {
            "ngram": cfg.decontaminate.ngram,
            "min_shared": cfg.decontaminate.min_shared,
            "sets": sorted(cfg.decontaminate.eval_sets),
        }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def wikipedia_index(root: Path, cfg: CorpusConfig) -> Path | None:
    """The Wikipedia index folder of this build (built once, shared by every part), or None."""
    w = cfg.wikipedia
    if not w.enabled:
        return None
    return ensure_index(w.sources, w.index, w.ngram, root)


def run_part(docs_part: Path, root: Path, cfg: CorpusConfig, force: bool = False) -> StageStats:
    root, docs_part = Path(root), Path(docs_part)
    part = docs_part.name.split(".")[0]
    index_dir = wikipedia_index(root, cfg)
    return stage.run_marked(
        root=root,
        step=STAGE,
        part=part,
        inputs=[docs_part, *(Path(p) for p in cfg.decontaminate.eval_sets.values())],
        config_fp=config_fingerprint(cfg, index_dir),
        version=VERSION,
        work=lambda: _work(docs_part, root, cfg, part, index_dir),
        force=force,
    )
