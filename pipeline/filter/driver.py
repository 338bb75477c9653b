"""The filter driver: one docs part -> filtered part and ledger part."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.core import stage
from pipeline.core.config import CorpusConfig
from pipeline.core.errors import ConfigError
from pipeline.core.io import read_table, write_table
from pipeline.core.ledger import Ledger, StageStats
from pipeline.filter import wikipedia
from pipeline.filter.rules import check

VERSION = 1
STAGE = "filter"


def _work(docs_part: Path, root: Path, cfg: CorpusConfig, part: str) -> StageStats:
    table = read_table(docs_part)
    # The text is not needed by any rule; leaving it out keeps a part's rows small.
    rows = table.drop_columns(["text"]).to_pylist()
    fcfg = cfg.filter
    if fcfg.wikipedia_dump is not None:
        index = wikipedia.load_index(fcfg.wikipedia_dump, fcfg.wiki_ngram, root)
        texts = table.column("text").to_pylist()
        # float32 like the column, so the rule sees exactly the value that is stored.
        values = wikipedia.overlaps(texts, index, fcfg.wiki_ngram).astype(np.float32)
        for row, v in zip(rows, values.tolist(), strict=True):
            row["wiki_overlap"] = v
        col = table.schema.get_field_index("wiki_overlap")
        table = table.set_column(col, table.schema.field(col), pa.array(values, type=pa.float32()))
    ledger = Ledger(root, STAGE, part)
    keep: list[int] = []
    for i, row in enumerate(rows):
        failed = check(row, cfg.filter)
        if failed is None:
            keep.append(i)
        else:
            ledger.drop(row["url"], *failed)
    out = root / "filtered" / f"{part}.parquet"
    write_table(out, table.take(pa.array(keep, pa.int64())))
    ledger_path = ledger.write()
    stats = StageStats(stage=STAGE, part=part, n_in=table.num_rows, n_out=len(keep))
    stats.dropped.update(ledger.counts)
    stats.outputs = [str(out.relative_to(root)), str(ledger_path.relative_to(root))]
    return stats


def run_part(docs_part: Path, root: Path, cfg: CorpusConfig, force: bool = False) -> StageStats:
    root, docs_part = Path(root), Path(docs_part)
    part = docs_part.name.split(".")[0]
    config_fp = cfg.filter.fingerprint()
    if cfg.filter.wikipedia_dump is not None:
        # The dump's path is in the section; its content must be too.
        if not Path(cfg.filter.wikipedia_dump).is_file():
            raise ConfigError(f"filter.wikipedia_dump not found: {cfg.filter.wikipedia_dump}")
        cache_dir = root / "wikipedia"
        index_fp = wikipedia.index_fingerprint(
            cfg.filter.wikipedia_dump, cfg.filter.wiki_ngram, cache_dir
        )
        config_fp = hashlib.sha256(f"{config_fp}:{index_fp}".encode()).hexdigest()[:16]
    return stage.run_marked(
        root=root,
        step=STAGE,
        part=part,
        inputs=[docs_part],
        config_fp=config_fp,
        version=VERSION,
        work=lambda: _work(docs_part, root, cfg, part),
        force=force,
    )
