"""filter stage: apply config thresholds to the signals that extract stored.

Score, then filter: extract computes the signals once; this cheap step reads them, so a new
threshold reruns only filter and what follows. The first failing rule is the drop reason, in
a fixed order (wikipedia, wikipedia_overlap, wrong_language, too_short, too_long, then the
quality rules, each named after its config field), and every drop is a ledger row with the
value that failed.

wikipedia_overlap is the one signal computed here rather than in extract: it needs the
n-gram index of a Wikipedia dump (pipeline.wikipedia), which is off by default. When
`filter.wikipedia_dump` is set, every document's overlap is written to `wiki_overlap` and
the dump's content identity joins the config fingerprint, so a new dump re-filters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from pipeline import stage, wikipedia
from pipeline.config import CorpusConfig, FilterConfig
from pipeline.errors import ConfigError
from pipeline.io import read_table, write_table
from pipeline.ledger import Ledger, StageStats

VERSION = 1
STAGE = "filter"

Rule = Callable[[dict[str, Any], FilterConfig], str | None]


def _parent_domains(host: str) -> Iterable[str]:
    """a.b.example.co.uk -> itself, b.example.co.uk, example.co.uk, co.uk, uk. Matching any
    of them against the list covers the registered domain without a suffix list."""
    labels = host.lower().rstrip(".").split(".")
    for i in range(len(labels)):
        yield ".".join(labels[i:])


def _host_of(url: str | None) -> str:
    if not url:
        return ""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def is_wikipedia(doc: dict[str, Any], domains: Iterable[str]) -> str | None:
    """The matching listed domain when the link or the page it redirected to is on one."""
    listed = {d.lower().strip(".") for d in domains}
    candidates = [doc.get("domain") or "", doc.get("host") or "", _host_of(doc.get("final_url"))]
    for cand in candidates:
        for parent in _parent_domains(cand):
            if parent in listed:
                return parent
    return None


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _rule_wikipedia(d: dict[str, Any], c: FilterConfig) -> str | None:
    hit = is_wikipedia(d, c.wikipedia_domains)
    return hit


def _rule_wiki_overlap(d: dict[str, Any], c: FilterConfig) -> str | None:
    v = d.get("wiki_overlap")
    if c.wikipedia_dump is None or v is None:
        return None
    return f"{v:.2f}" if v > c.max_wiki_overlap else None


def _rule_language(d: dict[str, Any], c: FilterConfig) -> str | None:
    score = _num(d.get("lang_score"))
    if d.get("lang") not in c.langs or not score >= c.min_lang_score:
        return f"{d.get('lang')} {score:.2f}"
    return None


def _rule_too_short(d: dict[str, Any], c: FilterConfig) -> str | None:
    n = d.get("n_tokens") or 0
    return f"{n} < {c.min_tokens} tokens" if n < c.min_tokens else None


def _rule_too_long(d: dict[str, Any], c: FilterConfig) -> str | None:
    n = d.get("n_tokens") or 0
    if c.max_tokens is not None and n > c.max_tokens:
        return f"{n} > {c.max_tokens} tokens"
    return None


def _min_rule(column: str, field: str) -> Rule:
    def rule(d: dict[str, Any], c: FilterConfig) -> str | None:
        limit = getattr(c, field)
        v = _num(d.get(column))
        if limit is not None and v < limit:
            return f"{v:.3g} < {limit:g}"
        return None

    return rule


def _max_rule(column: str, field: str) -> Rule:
    def rule(d: dict[str, Any], c: FilterConfig) -> str | None:
        limit = getattr(c, field)
        v = _num(d.get(column))
        if limit is not None and v > limit:
            return f"{v:.3g} > {limit:g}"
        return None

    return rule


# (reason, rule) in the order they are checked.
RULES: list[tuple[str, Rule]] = [
    ("wikipedia", _rule_wikipedia),
    ("wikipedia_overlap", _rule_wiki_overlap),
    ("wrong_language", _rule_language),
    ("too_short", _rule_too_short),
    ("too_long", _rule_too_long),
    ("min_mean_word_len", _min_rule("mean_word_len", "min_mean_word_len")),
    ("max_mean_word_len", _max_rule("mean_word_len", "max_mean_word_len")),
    ("max_symbol_word_ratio", _max_rule("symbol_word_ratio", "max_symbol_word_ratio")),
    ("min_frac_lines_end_punct", _min_rule("frac_lines_end_punct", "min_frac_lines_end_punct")),
    ("max_dup_line_frac", _max_rule("dup_line_frac", "max_dup_line_frac")),
    ("min_stop_words", _min_rule("n_stop_words", "min_stop_words")),
    ("max_bullet_line_frac", _max_rule("bullet_line_frac", "max_bullet_line_frac")),
    ("max_ellipsis_line_frac", _max_rule("ellipsis_line_frac", "max_ellipsis_line_frac")),
    ("max_boilerplate_hits", _max_rule("boilerplate_hits", "max_boilerplate_hits")),
]


def check(doc: dict[str, Any], cfg: FilterConfig) -> tuple[str, str] | None:
    """(reason, detail) of the first rule the document fails, None when it passes all."""
    for reason, rule in RULES:
        detail = rule(doc, cfg)
        if detail is not None:
            return reason, detail
    return None


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
    return stage.run_part(
        root=root,
        stage=STAGE,
        part=part,
        inputs=[docs_part],
        config_fp=config_fp,
        version=VERSION,
        work=lambda: _work(docs_part, root, cfg, part),
        force=force,
    )
