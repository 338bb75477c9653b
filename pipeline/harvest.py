"""Harvest: Reddit submission dumps -> links/part-NNNNN.parquet (one row per normalized URL).

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

Counting: every non-blank input line is one item; a damaged (truncated/corrupt) file adds one
item, its `corrupt_file` ledger row (file and offset), which stands for the incomplete tail.
Reasons, in the order they are checked: bad_json, bad_record, low_karma (per_post mode),
self_post, missing_url, removed, nsfw, out_of_window, blocked_subreddit, invalid_url,
reddit_link, url_too_long, blocked_domain, blocked_extension; when merging: takedown,
low_karma (summed mode), merged_duplicate.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import HarvestConfig
from pipeline.dumps import DumpReader, expand_inputs
from pipeline.errors import ConfigError
from pipeline.io import _tmp_path, atomic_write_json, part_name, sha256_file, write_table
from pipeline.ledger import StageStats
from pipeline.stage import marker_path, run_part
from pipeline.urls import host_matches, normalize_url, registered_domain, url_extension, url_host
from schemas.records import CANDIDATE_SCHEMA, LEDGER_SCHEMA, LINKS_SCHEMA

log = logging.getLogger(__name__)

VERSION = 1
STAGE = "harvest"
FILE_STAGE = "harvest_file"  # not in pipeline.ledger.STAGES: its counts reach the funnel via parts
INT32_MAX = 2**31 - 1

# Registered domains of Reddit itself: a link there is not an outbound link.
REDDIT_DOMAINS = frozenset(
    {
        "reddit.com",
        "redd.it",
        "redditmedia.com",
        "reddituploads.com",
        "redditstatic.com",
        "reddit.app.link",
        "reddit.co",
    }
)

_CAND_COLS = CANDIDATE_SCHEMA.names


# ---------------------------------------------------------------------------------------------
# Rules


class Rules:
    """HarvestConfig compiled into the sets and bounds the per-line code reads."""

    __slots__ = (
        "allow_self",
        "blocked_domains",
        "blocked_ext",
        "cfg",
        "drop_reddit",
        "drop_removed",
        "end",
        "extra_params",
        "include_nsfw",
        "max_len",
        "min_karma",
        "n_parts",
        "per_post",
        "start",
        "sub_allow",
        "sub_block",
    )

    def __init__(self, cfg: HarvestConfig):
        self.cfg = cfg
        self.min_karma = cfg.min_karma
        self.per_post = cfg.karma_mode == "per_post"
        self.start = _day_start(cfg.start_date) if cfg.start_date else None
        self.end = _day_start(cfg.end_date) + 86400 if cfg.end_date else None  # end inclusive
        self.allow_self = cfg.allow_self_posts
        self.include_nsfw = cfg.include_nsfw
        self.sub_block = frozenset(s.lower().removeprefix("r/") for s in cfg.subreddit_blocklist)
        self.sub_allow = frozenset(s.lower().removeprefix("r/") for s in cfg.subreddit_allowlist)
        self.blocked_domains = frozenset(d.lower().strip(".") for d in cfg.blocked_domains)
        self.blocked_ext = frozenset(e.lower().lstrip(".") for e in cfg.blocked_extensions)
        self.max_len = cfg.max_url_length
        self.drop_removed = cfg.drop_removed
        self.drop_reddit = cfg.drop_reddit_links
        self.extra_params = frozenset(p.lower() for p in cfg.extra_tracking_params)
        self.n_parts = cfg.n_parts


def _day_start(d: Any) -> int:
    return int(datetime.combine(d, time(0), tzinfo=UTC).timestamp())


def rules_fingerprint(cfg: HarvestConfig) -> str:
    """The settings the per-file step reads: not the input list (a new month must not redo old
    ones) and not the takedown file (applied when merging, on every build)."""
    blob = json.dumps(
        cfg.model_dump(mode="json", exclude={"inputs", "takedown_file", "full_input_hash", "api"}),
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def part_of(domain: str, n_parts: int) -> int:
    """Links part of a registered domain: blake2b, stable across processes and machines."""
    digest = hashlib.blake2b(domain.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_parts


# ---------------------------------------------------------------------------------------------
# Per-record function


class RawPost(msgspec.Struct):
    """The fields of a submission line that the rules read; every era's types are accepted
    (Any), and the other ~100 fields of a line are skipped without building Python objects,
    which is most of what makes decoding 2x faster than a dict."""

    id: Any = None
    name: Any = None
    score: Any = None
    ups: Any = None
    is_self: Any = None
    domain: Any = None
    url: Any = None
    url_overridden_by_dest: Any = None
    removed_by_category: Any = None
    over_18: Any = None
    created_utc: Any = None
    created: Any = None
    subreddit: Any = None
    subreddit_name_prefixed: Any = None
    permalink: Any = None
    title: Any = None
    crosspost_parent_list: Any = None
    kind: Any = None
    data: Any = None


class _Head(msgspec.Struct):
    id: Any = None
    score: Any = None
    kind: Any = None


_HEAD_DECODER = msgspec.json.Decoder(_Head)
_POST_FIELDS = RawPost.__struct_fields__
_DECODER = msgspec.json.Decoder(RawPost)


def post_from_dict(obj: dict[str, Any]) -> RawPost:
    return RawPost(**{name: obj.get(name) for name in _POST_FIELDS})


def parse_line(line: bytes) -> RawPost:
    """The submission of one line; raises ValueError when the line is not a JSON object.

    msgspec first (fast); anything it refuses goes to the stdlib json, the reference for what
    is JSON (numbers beyond 64 bits, lone surrogate escapes). Invalid UTF-8 bytes are replaced
    by U+FFFD rather than losing the post (msgspec ignores them in fields it skips anyway)."""
    try:
        post = _DECODER.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        try:
            obj = json.loads(line.decode("utf-8", "replace"))
        except RecursionError as err:
            raise ValueError("nesting too deep") from err
        if type(obj) is not dict:
            raise ValueError("not a JSON object") from None
        post = post_from_dict(obj)
    if post.kind == "t3" and type(post.data) is dict:
        post = post_from_dict(post.data)  # Reddit API listing children, as our API dumps hold
    return post


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """Strings Parquet can store: lone surrogates (split emoji in old dumps) become U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


def _epoch(value: Any) -> int | None:
    """created_utc of any era: int, float, numeric string or ISO-8601 string."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and abs(value) < 1e13 else None
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp())
    return None


def _score(post: RawPost) -> int | None:
    value = post.score
    if value is None:
        value = post.ups  # the oldest eras carry ups/downs only
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


_PERMALINK_SUB = re.compile(r"/r/([^/]+)/")


def _subreddit(post: RawPost) -> str:
    sub = post.subreddit
    if isinstance(sub, str) and sub:
        return sub.lower()
    prefixed = post.subreddit_name_prefixed
    if isinstance(prefixed, str) and prefixed.lower().startswith("r/"):
        return prefixed[2:].lower()
    permalink = post.permalink
    if isinstance(permalink, str):
        m = _PERMALINK_SUB.search(permalink)
        if m:
            return m.group(1).lower()
    return ""


def _post_id(post: RawPost) -> str | None:
    pid = post.id
    if isinstance(pid, str) and pid:
        return pid
    if isinstance(pid, int):
        return str(pid)
    name = post.name
    if isinstance(name, str) and name.startswith("t3_"):
        return name[3:]
    return None


def _is_reddit(host: str) -> bool:
    return registered_domain(host) in REDDIT_DOMAINS


def _crosspost_target(post: RawPost) -> str | None:
    """The outbound URL a crosspost carries through its parent, if the parent is a link post."""
    parents = post.crosspost_parent_list
    if not isinstance(parents, list):
        return None
    for parent in parents:
        if isinstance(parent, dict) and not parent.get("is_self"):
            url = parent.get("url_overridden_by_dest") or parent.get("url")
            if isinstance(url, str) and url:
                return url
    return None


# A drop: (reason, detail). A keep: the candidate tuple in CANDIDATE_SCHEMA order minus part.
Drop = tuple[str, str]
Candidate = tuple[str, str, str, int, str, str, int | None, str]


def judge(post: RawPost, rules: Rules, post_id: str) -> Drop | Candidate:
    """Apply the per-post rules to one parsed line. Reasons are checked in a fixed order, so a
    post breaking several rules always gets the same reason. Karma comes first (per_post mode):
    it is WebText's defining rule and drops most lines with one lookup."""
    score = post.score
    if type(score) is not int:
        score = _score(post)
    if rules.per_post and (score is None or score < rules.min_karma):
        return ("low_karma", "no score" if score is None else str(score))
    if not rules.allow_self:
        domain = post.domain
        if post.is_self is True or (type(domain) is str and domain.startswith("self.")):
            return ("self_post", "")
    url = post.url_overridden_by_dest or post.url
    if type(url) is not str or not url.strip():
        return ("missing_url", "")
    if rules.drop_removed:
        removed = post.removed_by_category
        if removed:
            return ("removed", str(removed))
    if not rules.include_nsfw and post.over_18 is True:
        return ("nsfw", "")
    created = _epoch(post.created_utc)
    if created is None:
        created = _epoch(post.created)
    if rules.start is not None or rules.end is not None:
        if created is None:
            return ("out_of_window", "no created_utc")
        if (rules.start is not None and created < rules.start) or (
            rules.end is not None and created >= rules.end
        ):
            return ("out_of_window", str(created))
    sub = _subreddit(post)
    if (rules.sub_allow and sub not in rules.sub_allow) or sub in rules.sub_block:
        return ("blocked_subreddit", sub)
    norm = normalize_url(url, rules.extra_params)
    relative = norm is None and url.startswith("/")  # a permalink: crossposts of every era
    if norm is None and not relative:
        return ("invalid_url", _clean(url[:300]))
    host = url_host(norm) if norm is not None else ""
    if relative or (rules.drop_reddit and _is_reddit(host)):
        target = _crosspost_target(post)
        norm = normalize_url(target, rules.extra_params) if target else None
        if norm is None:
            return ("reddit_link", _clean(url[:300]))
        host = url_host(norm)
        if _is_reddit(host):
            return ("reddit_link", norm[:300])
    if norm is None:  # only a relative URL gets here, and those were resolved or dropped above
        return ("invalid_url", _clean(url[:300]))
    if len(norm) > rules.max_len:
        return ("url_too_long", str(len(norm)))
    if host_matches(host, rules.blocked_domains) is not None:
        return ("blocked_domain", host)
    if rules.blocked_ext and url_extension(norm) in rules.blocked_ext:
        return ("blocked_extension", norm[:300])
    title = post.title
    title = html.unescape(title) if isinstance(title, str) and "&" in title else title
    return (
        norm,
        registered_domain(host),
        host,
        score if score is not None else 0,
        post_id,
        _clean(sub),
        created,
        _clean(title) if isinstance(title, str) else "",
    )


# ---------------------------------------------------------------------------------------------
# Per-file step


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
        self.tmp = _tmp_path(path)
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
    columns: list[Any] = list(zip(*rows)) if rows else [[] for _ in _CAND_COLS]
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
    head_decode = _HEAD_DECODER.decode
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
                    pid = _post_id(post)
                    k = _clean(pid) if pid is not None else f"{label}:{n_in}"
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
        if reader.damage is not None:
            n_in += 1
            add_key(path.name)
            add_reason("corrupt_file")
            add_detail(reader.damage.detail())
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


def run_file(path: Path, root: Path, cfg: HarvestConfig, rules: Rules | None = None) -> StageStats:
    """The per-file step with its done marker: skipped when the file and rules are unchanged.

    The marker's input is a small stamp file (see dump_stamp), rewritten only when it changes."""
    root = Path(root)
    key = file_key(path)
    stamp = root / stamp_rel(key)
    _write_if_changed(stamp, dump_stamp(path, cfg.full_input_hash))
    return run_part(
        root,
        FILE_STAGE,
        key,
        [stamp],
        rules_fingerprint(cfg),
        VERSION,
        lambda: harvest_file(path, root, cfg, rules),
    )


# ---------------------------------------------------------------------------------------------
# Merge step


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


def _write_if_changed(path: Path, obj: Any) -> None:
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    if path.is_file() and path.read_bytes() == data:
        return  # same bytes: the merge marker's input hash stays valid
    atomic_write_json(path, obj)


def _file_fingerprints(root: Path, key: str) -> dict[str, str]:
    marker = json.loads(marker_path(root, FILE_STAGE, key).read_text())
    return dict(marker.get("output_sha256", {}))


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


# ---------------------------------------------------------------------------------------------
# Driver


def check_inputs(cfg: HarvestConfig) -> list[Path]:
    """The dump files a build will read; a missing input is a config error, raised before
    any work starts."""
    if not cfg.inputs and not cfg.api.subreddits:
        raise ConfigError("harvest.inputs: no dump files given (and harvest.api is off)")
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


def run_merge(
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
    _write_if_changed(
        manifest,
        {
            "files": {key: _file_fingerprints(root, key) for key in sorted(file_stats)},
            "takedown_sha256": sha256_file(Path(cfg.takedown_file)) if cfg.takedown_file else None,
        },
    )
    return run_part(
        root,
        STAGE,
        part_name(index),
        [manifest],
        rules_fingerprint(cfg),
        VERSION,
        lambda: merge_part(root, cfg, index, file_stats, takedown),
    )


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
    results = [run_merge(root, cfg, i, file_stats, takedown) for i in range(cfg.n_parts)]
    prune_stale(root, set(file_stats), cfg.n_parts)
    return results


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


def summarize(stats: Iterable[StageStats]) -> dict[str, Any]:
    """Sum of harvest stats: {"in", "out", "dropped"} (what funnel.json shows for harvest)."""
    total: Counter[str] = Counter()
    n_in = n_out = 0
    for st in stats:
        n_in += st.n_in
        n_out += st.n_out
        total.update(st.dropped)
    return {"in": n_in, "out": n_out, "dropped": dict(sorted(total.items()))}
