"""Checks a build runs before any work: a missing input or reference is a ConfigError (exit
code 2 from the CLI, an immediate failure of a deployment run), never a part failing later."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.config import CorpusConfig
from pipeline.core.evalsets import check_eval_sets
from pipeline.filter.wiki_index import check_index
from pipeline.filter.wiki_sources import source_files
from pipeline.harvest import check_inputs


def preflight(cfg: CorpusConfig) -> None:
    check_inputs(cfg.harvest)
    preflight_filter(cfg)
    check_eval_sets(cfg.overlap.eval_sets)


def preflight_filter(cfg: CorpusConfig) -> None:
    """What the filter stage reads besides its parts: the Wikipedia reference, the
    evaluation sets."""
    w = cfg.wikipedia
    if w.index is not None:
        check_index(Path(w.index), w.ngram)
    elif w.sources:
        source_files(w.sources)
    check_eval_sets(cfg.decontaminate.eval_sets)
