"""Harvest rules: decode one submission and judge it (WebText's keep/drop rules, in order)."""

from __future__ import annotations

import hashlib
import html
import json
import logging
import math
import re
from datetime import UTC, datetime, time
from typing import Any

import msgspec

from pipeline.core.config import HarvestConfig
from pipeline.harvest.urls import (
    host_matches,
    normalize_url,
    registered_domain,
    url_extension,
    url_host,
)

# 2: Arctic Shift's `_meta` removals count as removed.
VERSION = 2
STAGE = "harvest"
# A step of harvest (pipeline.core.ledger.STEPS), not a funnel stage: its counts reach the
# funnel through the links parts.
FILE_STAGE = "harvest_file"
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

log = logging.getLogger(__name__)


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
        cfg.model_dump(
            mode="json",
            exclude={"inputs", "takedown_file", "full_input_hash", "api", "arctic_shift"},
        ),
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
    # Arctic Shift (2023-11+): what a second retrieval 36 h later found, e.g. a removal. Kept
    # raw: decoded only for the rare post it marks as deleted later.
    meta: msgspec.Raw = msgspec.field(default=msgspec.Raw(b""), name="_meta")


class _Head(msgspec.Struct):
    id: Any = None
    score: Any = None
    kind: Any = None


HEAD_DECODER = msgspec.json.Decoder(_Head)
# (attribute, JSON key) pairs: `meta` is spelled `_meta` in the dumps.
_POST_FIELDS = tuple(zip(RawPost.__struct_fields__, RawPost.__struct_encode_fields__))
_DECODER = msgspec.json.Decoder(RawPost)


def post_from_dict(obj: dict[str, Any]) -> RawPost:
    values = {name: obj.get(key) for name, key in _POST_FIELDS}
    meta = values.pop("meta")
    return RawPost(**values, meta=msgspec.Raw(json.dumps(meta).encode() if meta else b""))


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


def clean_text(text: str) -> str:
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


def _later_removal(raw: msgspec.Raw) -> str | None:
    """Arctic Shift's removal found at its second retrieval (`_meta.removal_type`, the same
    vocabulary as removed_by_category), which a Pushshift record would carry in
    removed_by_category when Pushshift saw the removal."""
    if not raw:
        return None
    blob = bytes(raw)
    if b"was_deleted_later" not in blob:
        return None
    try:
        meta = json.loads(blob)
    except ValueError:
        return None
    if type(meta) is not dict or not meta.get("was_deleted_later"):
        return None
    removal = meta.get("removal_type")
    return removal if isinstance(removal, str) and removal else None


def post_id_of(post: RawPost) -> str | None:
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
        later = _later_removal(post.meta)
        if later:
            return ("removed", f"later: {later}")
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
        return ("invalid_url", clean_text(url[:300]))
    host = url_host(norm) if norm is not None else ""
    if relative or (rules.drop_reddit and _is_reddit(host)):
        target = _crosspost_target(post)
        norm = normalize_url(target, rules.extra_params) if target else None
        if norm is None:
            return ("reddit_link", clean_text(url[:300]))
        host = url_host(norm)
        if _is_reddit(host):
            return ("reddit_link", norm[:300])
    if norm is None:  # only a relative URL gets here, and those were resolved or dropped above
        return ("invalid_url", clean_text(url[:300]))
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
        clean_text(sub),
        created,
        clean_text(title) if isinstance(title, str) else "",
    )
