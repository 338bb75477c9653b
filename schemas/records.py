"""Record dataclasses and their Arrow schemas.

A stage builds rows as dataclasses (or plain dicts with the same keys) and writes them with the
matching schema, so a column is named and typed in exactly one place.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

UTC_SECONDS = pa.timestamp("s", tz="UTC")
UTC_MILLIS = pa.timestamp("ms", tz="UTC")


def doc_id(normalized_url: str) -> str:
    """Stable document id: 16 hex chars of blake2b over the normalized URL."""
    return hashlib.blake2b(normalized_url.encode("utf-8"), digest_size=8).hexdigest()


@dataclass(slots=True)
class LedgerRow:
    """Why one input item did not become an output row."""

    key: str
    reason: str
    detail: str = ""


LEDGER_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
    ]
)


@dataclass(slots=True)
class LinkRecord:
    """One normalized outbound URL with the Reddit evidence for it (harvest output)."""

    url: str
    domain: str  # registered domain, e.g. bbc.co.uk
    host: str
    karma: int  # by harvest.karma_mode
    karma_max: int
    karma_sum: int
    n_posts: int
    post_ids: list[str] = field(default_factory=list)
    subreddits: list[str] = field(default_factory=list)
    first_seen: datetime | None = None
    title: str = ""


LINKS_SCHEMA = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("host", pa.string(), nullable=False),
        pa.field("karma", pa.int32(), nullable=False),
        pa.field("karma_max", pa.int32(), nullable=False),
        pa.field("karma_sum", pa.int64(), nullable=False),
        pa.field("n_posts", pa.int32(), nullable=False),
        pa.field("post_ids", pa.list_(pa.string())),
        pa.field("subreddits", pa.list_(pa.string())),
        pa.field("first_seen", UTC_SECONDS),
        pa.field("title", pa.string()),
    ]
)


# One judged post of one dump file (harvest/files/<key>.parquet): the per-file step writes
# these, the merge groups them by URL into links parts; `part` is the links part of its domain.
CANDIDATE_SCHEMA = pa.schema(
    [
        pa.field("part", pa.int32(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("host", pa.string(), nullable=False),
        pa.field("score", pa.int64(), nullable=False),
        pa.field("post_id", pa.string(), nullable=False),
        pa.field("subreddit", pa.string(), nullable=False),
        pa.field("created", pa.int64()),
        pa.field("title", pa.string(), nullable=False),
    ]
)


# Fixed set of crawl outcomes; `error` is null when the page was fetched and kept.
CRAWL_ERRORS = (
    "robots",
    "timeout",
    "dns",
    "connection",
    "too_large",
    "bad_content_type",
    "bad_encoding",  # a Content-Encoding (gzip, br, ...) that does not decode
    "http_3xx",
    "http_4xx",
    "http_5xx",
    "redirect_loop",
    "too_many_redirects",
    "blocked_address",
    "invalid_url",
    "empty_body",
    # dead pages served with 200 (pipeline/crawl/deadpage.py)
    "soft_404",
    "parked",
    # a dead link whose archive fallback failed (pipeline/crawl/archive.py)
    "archive_miss",  # no usable capture in any archive asked
    "archive_unavailable",  # 429/503/5xx after retries, timeouts, connection errors
    "archive_bad_record",  # truncated range, unreadable WARC record or gzip member
    "archive_too_large",
    "archive_bad_content_type",
    "archive_blocked_address",  # an archive URL (or its redirect) on a forbidden address
    "host_unreachable",  # the host kept failing (timeouts, refused, DNS): link not requested
    "other",
)

# Where a fetch row's outcome (and a document's bytes) came from.
SOURCES = ("live", "wayback", "commoncrawl")


@dataclass(slots=True)
class FetchRecord:
    """Exactly one row per link of a crawl part: what happened when it was fetched."""

    url: str
    final_url: str | None
    status: int | None
    content_type: str | None
    bytes: int
    fetched_at: datetime | None
    elapsed_ms: int | None
    error: str | None
    warc_file: str | None = None  # relative to the output root
    warc_offset: int | None = None
    warc_length: int | None = None
    source: str = "live"  # SOURCES
    captured_at: datetime | None = None  # when the kept bytes were captured (live or archive)
    live_error: str | None = None  # an archived row: why the live page counted as dead


FETCH_SCHEMA = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),
        pa.field("final_url", pa.string()),
        pa.field("status", pa.int32()),
        pa.field("content_type", pa.string()),
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("fetched_at", UTC_MILLIS),
        pa.field("elapsed_ms", pa.int32()),
        pa.field("error", pa.string()),
        pa.field("warc_file", pa.string()),
        pa.field("warc_offset", pa.int64()),
        pa.field("warc_length", pa.int64()),
        pa.field("source", pa.string()),  # null: live (rows written before the column)
        pa.field("captured_at", UTC_MILLIS),
        pa.field("live_error", pa.string()),
    ]
)


@dataclass(slots=True)
class DocRecord:
    """One extracted document with its provenance and the signals the filter step reads."""

    id: str
    url: str
    final_url: str
    domain: str
    host: str
    karma: int
    subreddits: list[str]
    first_seen: datetime | None
    reddit_title: str
    title: str | None
    date: str | None
    text: str
    lang: str
    lang_score: float
    n_chars: int
    n_words: int
    n_tokens: int
    mean_word_len: float
    symbol_word_ratio: float
    frac_lines_end_punct: float
    dup_line_frac: float
    n_stop_words: int
    bullet_line_frac: float
    ellipsis_line_frac: float
    boilerplate_hits: int
    wiki_overlap: float | None = None
    source: str = "live"  # SOURCES: where the page's bytes came from
    captured_at: datetime | None = None  # an archived page's capture time; null when live


DOCS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("final_url", pa.string()),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("host", pa.string()),
        pa.field("karma", pa.int32(), nullable=False),
        pa.field("subreddits", pa.list_(pa.string())),
        pa.field("first_seen", UTC_SECONDS),
        pa.field("reddit_title", pa.string()),
        pa.field("title", pa.string()),
        pa.field("date", pa.string()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float32()),
        pa.field("n_chars", pa.int32()),
        pa.field("n_words", pa.int32()),
        pa.field("n_tokens", pa.int32()),
        pa.field("mean_word_len", pa.float32()),
        pa.field("symbol_word_ratio", pa.float32()),
        pa.field("frac_lines_end_punct", pa.float32()),
        pa.field("dup_line_frac", pa.float32()),
        pa.field("n_stop_words", pa.int32()),
        pa.field("bullet_line_frac", pa.float32()),
        pa.field("ellipsis_line_frac", pa.float32()),
        pa.field("boilerplate_hits", pa.int32()),
        pa.field("wiki_overlap", pa.float32()),
        pa.field("source", pa.string()),
        pa.field("captured_at", UTC_SECONDS),
    ]
)


# Filtered documents: DOCS_SCHEMA plus how many characters of copied Wikipedia paragraphs the
# filter removed from `text` (null: no Wikipedia reference configured).
FILTERED_SCHEMA = DOCS_SCHEMA.append(pa.field("wiki_stripped_chars", pa.int32()))


SIGNATURE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text_hash", pa.string(), nullable=False),  # exact-dedup key
        pa.field("karma", pa.int32(), nullable=False),
        pa.field("first_seen", UTC_SECONDS),
        pa.field("signature", pa.list_(pa.uint32())),  # MinHash, dedup.num_perm values
    ]
)


SHARD_SCHEMA_BASE = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("karma", pa.int32(), nullable=False),
        pa.field("subreddits", pa.list_(pa.string())),
        pa.field("lang", pa.string()),
        pa.field("source", pa.string()),
        pa.field("captured_at", UTC_SECONDS),
        pa.field("n_tokens", pa.int32(), nullable=False),
    ]
)
# The shard columns copied from a dedup part as they are (the writer adds the tokens).
SHARD_DOC_COLUMNS = tuple(n for n in SHARD_SCHEMA_BASE.names if n != "n_tokens")


def shard_schema(vocab_size: int, include_text: bool) -> pa.Schema:
    """Shard columns: `tokens` is list<uint16> when the vocabulary fits, else list<uint32>."""
    token_type = pa.uint16() if vocab_size <= 2**16 else pa.uint32()
    schema = SHARD_SCHEMA_BASE.append(pa.field("tokens", pa.list_(token_type), nullable=False))
    if include_text:
        schema = schema.append(pa.field("text", pa.string(), nullable=False))
    return schema
