"""The filter driver: one docs part -> filtered part and ledger part.

Before the rules run, two signals that need a reference are computed here when configured:
copied Wikipedia paragraphs are stripped (pipeline.filter.wiki_strip; `wiki_overlap`,
`wiki_stripped_chars`, and the length figures of the text that is left), and documents are
matched against evaluation sets (pipeline.filter.decontaminate).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.core import stage
from pipeline.core.config import CorpusConfig
from pipeline.core.io import read_table, rows_to_table, write_table
from pipeline.core.ledger import Ledger, StageStats
from pipeline.core.ngrams import PowerTables
from pipeline.core.sources import count_by_source
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
# A row's count of removed paragraphs, for the stats (not a column).
REMOVED = "_wiki_removed_paragraphs"


def _strip_wikipedia(rows: list[dict[str, Any]], index_dir: Path, cfg: CorpusConfig) -> None:
    """Strip copied paragraphs from the rows in place."""
    wcfg = cfg.wikipedia
    index = load_index(index_dir)
    enc = get_encoding(cfg.tokenizer)
    tables = PowerTables()
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
    table = read_table(docs_part)
    rows = table.to_pylist()
    if index_dir is not None:
        _strip_wikipedia(rows, index_dir, cfg)
    else:
        for row in rows:
            row["wiki_stripped_chars"] = None
    if cfg.decontaminate.eval_sets:
        dcfg = cfg.decontaminate
        evals = EvalIndex.build(dcfg.eval_sets, dcfg.ngram)
        for row, detail in zip(
            rows, evals.details([r["text"] for r in rows], dcfg.min_shared), strict=True
        ):
            row["eval_overlap"] = detail
    ledger = Ledger(root, STAGE, part)
    kept: list[dict[str, Any]] = []
    for row in rows:
        failed = check(row, cfg.filter)
        if failed is None:
            kept.append(row)
        else:
            ledger.drop(row["url"], *failed)
    out = root / "filtered" / f"{part}.parquet"
    write_table(out, rows_to_table(kept, FILTERED_SCHEMA))
    ledger_path = ledger.write()
    stats = StageStats(stage=STAGE, part=part, n_in=len(rows), n_out=len(kept))
    stats.extra["by_source"] = count_by_source(r.get("source") for r in kept)
    stats.dropped.update(ledger.counts)
    stats.outputs = [str(out.relative_to(root)), str(ledger_path.relative_to(root))]
    if index_dir is not None:
        # What stripping took out of the documents that stay (a document dropped whole is
        # counted by its drop reason).
        stripped = [r for r in kept if r[REMOVED]]
        stats.extra["stripped"] = {
            "documents": len(stripped),
            "paragraphs": sum(r[REMOVED] for r in stripped),
            "chars": sum(r["wiki_stripped_chars"] for r in stripped),
        }
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
