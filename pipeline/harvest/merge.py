"""Harvest's merge step: links part N from the candidates of every judged dump, the takedown
list applied, one row per URL with its karma aggregated."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core.config import HarvestConfig
from pipeline.core.errors import ConfigError
from pipeline.core.io import part_name, sha256_file, write_table
from pipeline.core.ledger import StageStats
from pipeline.core.reuse import digests, marker_path, read_marker
from pipeline.core.stage import run_marked
from pipeline.harvest.files import candidates_rel, write_if_changed
from pipeline.harvest.rules import FILE_STAGE, INT32_MAX, STAGE, VERSION, rules_fingerprint
from pipeline.harvest.urls import host_matches, normalize_url
from schemas.records import CANDIDATE_SCHEMA, LEDGER_SCHEMA, LINKS_SCHEMA

log = logging.getLogger(__name__)


def load_takedown(path: str | None) -> tuple[frozenset[str], frozenset[str]]:
    """Takedown list: one URL (any spelling; normalized here) or one domain/host per line,
    '#' comments. A domain entry removes the host and all its subdomains."""
    if not path:
        return frozenset(), frozenset()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"takedown file not found: {p}")
    urls: set[str] = set()
    hosts: set[str] = set()
    for raw in p.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "://" in line:
            norm = normalize_url(line)
            if norm:
                urls.add(_without_scheme(norm))
        else:
            hosts.add(line.lower().strip("."))
    return frozenset(urls), frozenset(hosts)


def _without_scheme(url: str) -> str:
    """Takedown URLs match whatever the scheme: a removed page is removed over http and https."""
    return url.split("://", 1)[1]


def manifest_rel(index: int) -> str:
    return f"harvest/manifest/{part_name(index)}.json"


def links_rel(index: int) -> str:
    return f"links/{part_name(index)}.parquet"


def _file_fingerprints(root: Path, key: str) -> dict[str, str]:
    marker = read_marker(marker_path(root, FILE_STAGE, key)) or {}
    return digests(marker.get("outputs") or {})


def merge_part(
    root: Path,
    cfg: HarvestConfig,
    index: int,
    file_stats: dict[str, StageStats],
    takedown: tuple[frozenset[str], frozenset[str]],
) -> StageStats:
    """Build links part `index` from the candidates of every input file (work of one part)."""
    root = Path(root)
    pname = part_name(index)
    dropped: Counter[str] = Counter()
    n_in = 0
    tables = []
    for key in sorted(file_stats):
        st = file_stats[key]
        n_in += st.extra["part_candidates"][index]
        for reason, n in st.extra["part_drops"].get(str(index), {}).items():
            dropped[reason] += n
            n_in += n
        if st.extra["part_candidates"][index]:
            tables.append(
                pq.read_table(root / candidates_rel(key), filters=[("part", "==", index)])
            )
    table = (
        pa.concat_tables(tables).cast(CANDIDATE_SCHEMA)
        if tables
        else CANDIDATE_SCHEMA.empty_table()
    )
    table = table.sort_by(
        [("url", "ascending"), ("created", "ascending"), ("post_id", "ascending")]
    ).combine_chunks()
    links, drops = group_links(table, cfg, takedown)
    for reason, n in Counter(drops.column("reason").to_pylist()).items():
        dropped[reason] += n
    ledger_rel = f"ledger/{STAGE}/{pname}.parquet"
    write_table(root / links_rel(index), links)
    write_table(
        root / ledger_rel,
        drops.sort_by([("key", "ascending"), ("reason", "ascending"), ("detail", "ascending")]),
    )
    return StageStats(
        stage=STAGE,
        part=pname,
        n_in=n_in,
        n_out=links.num_rows,
        dropped=dropped,
        outputs=[links_rel(index), ledger_rel],
        extra={"posts": table.num_rows},
    )


def _drops(keys: pa.Array, reason: str, details: pa.Array) -> pa.Table:
    return pa.table(
        {"key": keys, "reason": pa.array([reason] * len(keys), pa.string()), "detail": details},
        schema=LEDGER_SCHEMA,
    )


def group_links(
    table: pa.Table,
    cfg: HarvestConfig,
    takedown: tuple[frozenset[str], frozenset[str]],
) -> tuple[pa.Table, pa.Table]:
    """Posts sorted by (url, created, post_id) -> (links table, ledger table).

    Column-wise (numpy/Arrow), not per row: a part can hold millions of posts in summed mode.
    Takedowns go first; then per URL karma_max/karma_sum/n_posts, the karma rule by karma_mode,
    and one representative post (highest score, then earliest, then smallest id) whose title
    the row carries; the other posts of a kept URL are merged_duplicate rows."""
    drops = [LEDGER_SCHEMA.empty_table()]
    td_urls, td_hosts = takedown
    if table.num_rows and (td_urls or td_hosts):
        urls_py = table.column("url").to_pylist()
        hosts_py = table.column("host").to_pylist()
        hit = np.fromiter(
            (
                (bool(td_urls) and _without_scheme(u) in td_urls)
                or (bool(td_hosts) and host_matches(h, td_hosts) is not None)
                for u, h in zip(urls_py, hosts_py)
            ),
            dtype=bool,
            count=table.num_rows,
        )
        if hit.any():
            gone = table.filter(pa.array(hit))
            drops.append(_drops(gone.column("post_id"), "takedown", gone.column("url")))
            table = table.filter(pa.array(~hit))
    m = table.num_rows
    if m == 0:
        return LINKS_SCHEMA.empty_table(), pa.concat_tables(drops)
    url = table.column("url")
    is_start = np.ones(m, dtype=bool)
    if m > 1:
        is_start[1:] = pc.not_equal(url.slice(1), url.slice(0, m - 1)).to_numpy(
            zero_copy_only=False
        )
    starts = np.flatnonzero(is_start)
    gid = np.cumsum(is_start) - 1
    scores = table.column("score").to_numpy(zero_copy_only=False).astype(np.int64)
    karma_sum = np.add.reduceat(scores, starts)
    karma_max = np.maximum.reduceat(scores, starts)
    n_posts = np.diff(np.append(starts, m))
    karma = karma_max if cfg.karma_mode == "per_post" else karma_sum
    group_ok = karma >= cfg.min_karma
    # Within each group: highest score first, ties keep the (created, post_id) order.
    order = np.lexsort((np.arange(m), -scores, gid))
    rep = order[starts]
    row_ok = group_ok[gid]
    is_rep = np.zeros(m, dtype=bool)
    is_rep[rep] = True
    low = ~row_ok
    if low.any():
        low_rows = table.filter(pa.array(low))
        detail = pc.binary_join_element_wise(
            "summed ", pa.array(karma_sum[gid[low]]).cast(pa.string()), ""
        )
        drops.append(_drops(low_rows.column("post_id"), "low_karma", detail))
    dup = row_ok & ~is_rep
    if dup.any():
        dup_rows = table.filter(pa.array(dup))
        drops.append(_drops(dup_rows.column("post_id"), "merged_duplicate", dup_rows.column("url")))
    keep_groups = np.flatnonzero(group_ok)
    keep_rep = pa.array(rep[keep_groups])
    offsets = np.append(starts, m).astype(np.int32)
    post_ids = pa.ListArray.from_arrays(pa.array(offsets), table.column("post_id").combine_chunks())
    subs = table.column("subreddit").to_pylist()
    subreddits = [
        ([subs[a]] if subs[a] else []) if b - a == 1 else sorted(set(subs[a:b]) - {""})
        for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())
    ]
    keep_mask = pa.array(group_ok)
    int32_max = np.int64(INT32_MAX)
    links = pa.table(
        {
            "url": url.take(keep_rep),
            "domain": table.column("domain").take(keep_rep),
            "host": table.column("host").take(keep_rep),
            "karma": pa.array(np.minimum(karma[keep_groups], int32_max).astype(np.int32)),
            "karma_max": pa.array(np.minimum(karma_max[keep_groups], int32_max).astype(np.int32)),
            "karma_sum": pa.array(karma_sum[keep_groups]),
            "n_posts": pa.array(n_posts[keep_groups].astype(np.int32)),
            "post_ids": post_ids.filter(keep_mask),
            "subreddits": pa.array(subreddits, pa.list_(pa.string())).filter(keep_mask),
            # Sorted by created with nulls last: a group's first row has its earliest time.
            "first_seen": table.column("created")
            .take(pa.array(starts[keep_groups]))
            .cast(pa.timestamp("s", tz="UTC")),
            "title": table.column("title").take(keep_rep),
        },
        schema=LINKS_SCHEMA,
    )
    return links, pa.concat_tables(drops)


def run_part(
    root: Path,
    cfg: HarvestConfig,
    index: int,
    file_stats: dict[str, StageStats],
    takedown: tuple[frozenset[str], frozenset[str]] | None = None,
) -> StageStats:
    """Links part `index` with its done marker (stage "harvest").

    The marker's input is a small manifest: the output hashes of every per-file step and of
    the takedown file, rewritten only when it changes; so a part reruns exactly when a dump,
    the rules or the takedown list changed."""
    root = Path(root)
    if takedown is None:
        takedown = load_takedown(cfg.takedown_file)
    manifest = root / manifest_rel(index)
    write_if_changed(
        manifest,
        {
            "files": {key: _file_fingerprints(root, key) for key in sorted(file_stats)},
            "takedown_sha256": sha256_file(Path(cfg.takedown_file)) if cfg.takedown_file else None,
        },
    )
    return run_marked(
        root,
        STAGE,
        part_name(index),
        [manifest],
        rules_fingerprint(cfg),
        VERSION,
        lambda: merge_part(root, cfg, index, file_stats, takedown),
    )


def prune_stale(root: Path, keys: set[str], n_parts: int) -> None:
    """Remove what an earlier build with other inputs or more parts left behind: ledgers of
    dumps no longer in the inputs, and links parts, ledgers and markers of parts >= n_parts;
    so links/ and ledger/harvest/ hold exactly this build's rows. Per-file caches stay (a dump
    that comes back reuses them)."""
    root = Path(root)
    wanted_parts = {part_name(i) for i in range(n_parts)}
    wanted_files = {f"file-{k}" for k in keys}
    for folder, allowed in (
        (root / "ledger" / STAGE, wanted_parts | wanted_files),
        (root / "links", wanted_parts),
        (root / "_done" / STAGE, wanted_parts),
        (root / "harvest" / "manifest", wanted_parts),
    ):
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_file() and p.name.rsplit(".", 1)[0] not in allowed:
                    p.unlink()
