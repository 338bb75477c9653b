"""Harvest: Reddit submission dumps -> links/part-NNNNN.parquet (one row per normalized URL).

Reads: Reddit submission dumps (harvest.inputs). Writes: links/part-NNNNN.parquet,
harvest/files/, ledger/harvest/. Drops: the reasons listed at the end of this docstring.
Driver: `run` (all), `run_file` (one dump), `run_part` (one links part).

Two steps, so that a new month reads only the new dump files:

1. per dump file (stage "harvest_file", not a funnel stage): every line is judged by the
   per-post rules (`judge`); survivors are written to harvest/files/<key>.parquet with their
   links part, drops to ledger/harvest/file-<key>.parquet. Cached by its own done marker, keyed
   by a stamp of the file (size, mtime, first and last MiB; see dump_stamp) and the rule
   settings, not by the input list or the takedown list.
2. per links part (stage "harvest"): the candidates of that part from every input file are
   read, the takedown list is applied (on every build), posts are grouped by URL, karma is
   aggregated by karma_mode and one row per URL is written, sorted by url. Parts are
   blake2b(registered domain) mod n_parts. Its stats also carry the per-file drops, spread
   evenly over the parts, so the harvest stats summed over parts give: in = input lines.

Counting: every non-blank input line is one item; every damaged region of a file (corrupt
frames are skipped to the next one; a truncated end) adds one item, its `corrupt_file` ledger
row (file, byte range, error), which stands for the lines lost in it.
Reasons, in the order they are checked: bad_json, bad_record, low_karma (per_post mode),
self_post, missing_url, removed, nsfw, out_of_window, blocked_subreddit, invalid_url,
reddit_link, url_too_long, blocked_domain, blocked_extension; when merging: takedown,
low_karma (summed mode), merged_duplicate.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.core.config import HarvestConfig
from pipeline.core.errors import ConfigError
from pipeline.core.ledger import StageStats
from pipeline.harvest.dumps import expand_inputs
from pipeline.harvest.files import harvest_file, run_file
from pipeline.harvest.merge import links_rel, load_takedown, prune_stale, run_part
from pipeline.harvest.rules import FILE_STAGE, STAGE, VERSION, Rules, judge, parse_line, part_of

__all__ = [
    "FILE_STAGE",
    "STAGE",
    "VERSION",
    "Rules",
    "check_inputs",
    "harvest_file",
    "input_files",
    "judge",
    "links_parts",
    "parse_line",
    "part_of",
    "run",
    "run_file",
    "run_part",
    "summarize",
]

log = logging.getLogger(__name__)


def check_inputs(cfg: HarvestConfig) -> list[Path]:
    """The dump files a build will read; a missing input is a config error, raised before
    any work starts."""
    if not cfg.inputs and not cfg.api.subreddits and not cfg.arctic_shift.subreddits:
        raise ConfigError(
            "harvest.inputs: no dump files given (and harvest.api, harvest.arctic_shift are off)"
        )
    return expand_inputs(cfg.inputs)


def links_parts(root: Path, cfg: HarvestConfig) -> list[Path]:
    """The links part files of a build with this config (all of them, empty ones included)."""
    return [Path(root) / links_rel(i) for i in range(cfg.n_parts)]


def input_files(inputs: list[str], cfg: HarvestConfig) -> list[Path]:
    """The dump files of a build: `inputs` (files, globs, folders), else cfg.inputs."""
    paths = expand_inputs(inputs or cfg.inputs)
    if not paths:
        raise ConfigError("harvest: no input files given")
    return paths


def run(inputs: list[str], root: Path, cfg: HarvestConfig) -> list[StageStats]:
    """Harvest dump files (files, globs, folders; default cfg.inputs) into links parts.

    A flow can run the same steps in parallel: run_file for each of input_files(...) (any
    order, any worker), then run_merge for each part index with {stats.part: stats}, then
    prune_stale."""
    root = Path(root)
    paths = input_files(inputs, cfg)
    takedown = load_takedown(cfg.takedown_file)
    rules = Rules(cfg)
    file_stats: dict[str, StageStats] = {}
    for path in paths:
        st = run_file(path, root, cfg, rules)
        file_stats[st.part] = st
        log.info("harvest_file %s: in=%d out=%d", st.part, st.n_in, st.n_out)
    results = [run_part(root, cfg, i, file_stats, takedown) for i in range(cfg.n_parts)]
    prune_stale(root, set(file_stats), cfg.n_parts)
    return results


def summarize(stats: Iterable[StageStats]) -> dict[str, Any]:
    """Sum of harvest stats: {"in", "out", "dropped"} (what funnel.json shows for harvest)."""
    total: Counter[str] = Counter()
    n_in = n_out = 0
    for st in stats:
        n_in += st.n_in
        n_out += st.n_out
        total.update(st.dropped)
    return {"in": n_in, "out": n_out, "dropped": dict(sorted(total.items()))}
