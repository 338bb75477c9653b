"""Corpus config: pydantic models with the GPT-2 WebText recipe as defaults.

A YAML file may set any subset of fields; everything it leaves out keeps its default. Unknown
keys are errors, so a typo fails loudly instead of silently keeping a default.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.core.errors import ConfigError

# Media and file hosts whose links rarely lead to text. Text sites (github.com, google.com)
# stay: WebText kept them, OpenWebText's blocklist wrongly dropped them.
DEFAULT_BLOCKED_DOMAINS = [
    "imgur.com",
    "i.redd.it",
    "v.redd.it",
    "redd.it",
    "reddituploads.com",
    "redditmedia.com",
    "youtube.com",
    "youtu.be",
    "vimeo.com",
    "dailymotion.com",
    "twitch.tv",
    "liveleak.com",
    "gfycat.com",
    "giphy.com",
    "tinypic.com",
    "photobucket.com",
    "flickr.com",
    "instagram.com",
    "pinterest.com",
    "500px.com",
    "deviantart.com",
    "streamable.com",
    "soundcloud.com",
    "spotify.com",
    "bandcamp.com",
    "gyazo.com",
    "puu.sh",
    "minus.com",
    "imageshack.us",
    "imgflip.com",
    "quickmeme.com",
    "memegenerator.net",
    "livememe.com",
    "makeameme.org",
    "facebook.com",
    "fbcdn.net",
    "twimg.com",
    "pornhub.com",
    "xvideos.com",
    "xhamster.com",
]
DEFAULT_BLOCKED_EXTENSIONS = [
    "jpg",
    "jpeg",
    "png",
    "gif",
    "gifv",
    "webp",
    "bmp",
    "tif",
    "tiff",
    "svg",
    "ico",
    "mp4",
    "webm",
    "mkv",
    "avi",
    "mov",
    "wmv",
    "flv",
    "m4v",
    "mp3",
    "wav",
    "ogg",
    "flac",
    "m4a",
    "pdf",
    "doc",
    "docx",
    "xls",
    "xlsx",
    "ppt",
    "pptx",
    "odt",
    "zip",
    "rar",
    "7z",
    "gz",
    "tgz",
    "bz2",
    "xz",
    "tar",
    "iso",
    "dmg",
    "exe",
    "msi",
    "apk",
    "deb",
    "rpm",
    "bin",
    "torrent",
    "swf",
    "psd",
    "csv",
    "json",
    "xml",
]
DEFAULT_WIKIPEDIA_DOMAINS = [
    "wikipedia.org",
    "wikimedia.org",
    "wikiwand.com",
    "wikibooks.org",
    "wikisource.org",
    "wiktionary.org",
    "wikiquote.org",
    "wikinews.org",
    "wikiversity.org",
    "wikivoyage.org",
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    def fingerprint(self) -> str:
        """Hash of this section: a stage's done marker changes when the section it reads does."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class RedditApiConfig(Section):
    """New months from the live Reddit API (listings of chosen subreddits), next to dumps."""

    subreddits: list[str] = Field(default_factory=list, description="empty: API source off")
    months: list[str] = Field(
        default_factory=list,
        description="YYYY-MM months to fetch; empty: the last complete month",
    )
    listing: Literal["top", "new"] = "top"
    secret_block: str = Field(
        "reddit-api-credentials",
        description="Prefect Secret block with {client_id, client_secret, user_agent}; "
        "without it, REDDIT_CLIENT_ID/REDDIT_CLIENT_SECRET/REDDIT_USER_AGENT",
    )
    dump_dir: str = Field("reddit-api", description="where fetched months go (under out_dir)")
    base_url: str = "https://oauth.reddit.com"
    token_url: str = "https://www.reddit.com/api/v1/access_token"
    max_pages: int | None = Field(None, ge=1)

    @field_validator("months")
    @classmethod
    def _months_are_months(cls, v: list[str]) -> list[str]:
        for m in v:
            year, _, month = m.partition("-")
            if not (year.isdigit() and month.isdigit() and 1 <= int(month) <= 12):
                raise ValueError(f"{m!r} is not YYYY-MM")
        return v


_SUBREDDIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{1,20}")


def check_months(months: list[str]) -> list[str]:
    for m in months:
        year, _, month = m.partition("-")
        if not (len(year) == 4 and year.isdigit() and len(month) == 2 and month.isdigit()):
            raise ValueError(f"{m!r} is not YYYY-MM")
        if not 1 <= int(month) <= 12:
            raise ValueError(f"{m!r} is not YYYY-MM")
    return months


class ArcticShiftConfig(Section):
    """Months no dump covers yet, from the Arctic Shift API (posts of chosen subreddits)."""

    subreddits: list[str] = Field(
        default_factory=list,
        description="subreddits whose posts are fetched (empty: Arctic Shift API source off); "
        "all of Reddit is the monthly dumps' job",
    )
    months: list[str] = Field(
        default_factory=list,
        description="YYYY-MM months to fetch; empty: the last `recent_months` settled months",
    )
    recent_months: int = Field(
        2, ge=1, le=24, description="settled months looked at when `months` is empty"
    )
    settle_hours: float = Field(
        48.0,
        ge=0,
        description="a month is fetched once it ended this long ago: Arctic Shift re-reads "
        "scores 36 h after a post, earlier fetches see placeholder scores",
    )
    dump_dir: str | None = Field(
        None,
        description="where fetched months are written as RS_YYYY-MM.zst; null: the first "
        "folder in harvest.inputs, else OUT/arctic-shift/dumps",
    )
    base_url: str = Field(
        "https://arctic-shift.photon-reddit.com", description="API root (tests: a local server)"
    )
    requests_per_second: float = Field(
        1.0,
        gt=0,
        description="own pace; the API's X-RateLimit-* headers and 429/503 Retry-After slow "
        "it further",
    )
    page_size: int = Field(100, ge=1, le=100, description="posts per request (API maximum 100)")
    max_retries: int = Field(5, ge=0, le=20, description="retries of 429, 5xx, timeouts")
    backoff_s: float = Field(
        2.0, ge=0, description="first wait after a failure without Retry-After, doubled per retry"
    )
    max_wait_s: float = Field(
        900.0, gt=0, description="cap on a single rate-limit or Retry-After wait (s)"
    )
    timeout_s: float = Field(60.0, gt=0, description="per request (s)")
    user_agent: str = Field(
        "webtext-harvest/0.1 (+https://github.com/webtext/webtext)",
        description="sent with every request",
    )

    @field_validator("subreddits")
    @classmethod
    def _subreddit_names(cls, v: list[str]) -> list[str]:
        names = []
        for name in v:
            bare = name.strip().removeprefix("r/").removeprefix("/r/")
            if not _SUBREDDIT.fullmatch(bare):
                raise ValueError(f"{name!r} is not a subreddit name (2-21 letters, digits, _)")
            names.append(bare.lower())
        if len(set(names)) != len(names):
            raise ValueError("a subreddit is listed twice")
        return names

    @field_validator("months")
    @classmethod
    def _months_are_months(cls, v: list[str]) -> list[str]:
        return check_months(v)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v.rstrip("/")


class HarvestConfig(Section):
    inputs: list[str] = Field(default_factory=list, description="dump files, globs or folders")
    min_karma: int = Field(3, description="WebText: posts with at least 3 karma")
    karma_mode: Literal["per_post", "summed"] = Field(
        "per_post", description="per_post: best single post counts; summed: all posts of a URL"
    )
    start_date: date | None = Field(
        None, description="first day of posts kept (UTC), null: no limit"
    )
    end_date: date | None = Field(
        date(2017, 12, 31), description="last day of posts kept (UTC); WebText ends 2017-12-31"
    )
    allow_self_posts: bool = Field(False, description="keep self (text) posts' URLs")
    include_nsfw: bool = Field(False, description="keep posts marked over_18")
    subreddit_blocklist: list[str] = Field(
        default_factory=list, description="subreddits whose posts are dropped"
    )
    subreddit_allowlist: list[str] = Field(
        default_factory=list, description="if set, only these subreddits"
    )
    blocked_domains: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_DOMAINS),
        description="media hosts (and their subdomains) never crawled",
    )
    blocked_extensions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_EXTENSIONS),
        description="file extensions of URL paths never crawled",
    )
    max_url_length: int = Field(2048, gt=0, description="longer normalized URLs are dropped")
    takedown_file: str | None = Field(
        None, description="URLs and domains (one per line) removed on every build"
    )
    n_parts: int = Field(
        16,
        ge=1,
        le=100000,
        description="links parts, partitioned by a hash of the registered domain",
    )
    api: RedditApiConfig = Field(
        default_factory=RedditApiConfig, description="Reddit API source (see harvest.api.*)"
    )
    arctic_shift: ArcticShiftConfig = Field(
        default_factory=ArcticShiftConfig,
        description="Arctic Shift API source (see harvest.arctic_shift.*)",
    )
    drop_removed: bool = Field(
        True,
        description="drop posts with removed_by_category set, or removed later by Arctic "
        "Shift's `_meta` (mod/admin/spam removals)",
    )
    drop_reddit_links: bool = Field(
        True, description="drop links back into Reddit (permalinks, crossposts without a target)"
    )
    extra_tracking_params: list[str] = Field(
        default_factory=list, description="query parameters stripped in addition to utm_* etc."
    )
    full_input_hash: bool = Field(
        False,
        description="fingerprint dumps by their full sha256 instead of size, mtime and the "
        "hash of their first and last MiB (reading every old month on each build is slow)",
    )


class ArchiveConfig(Section):
    """Web-archive fallback for dead links (pipeline/crawl/archive.py)."""

    sources: list[Literal["wayback", "commoncrawl"]] = Field(
        default_factory=list,
        description="archives asked for a dead link's capture, in this order (empty: off)",
    )
    errors: list[str] = Field(
        default_factory=lambda: [
            "connection_refused",
            "dns",
            "http_404",
            "http_410",
            "parked",
            "soft_404",
        ],
        description=(
            "crawl outcomes that make a link dead: a crawl error name, http_NNN for a status, "
            "or connection_refused; default: the permanent ones"
        ),
    )
    wayback_cdx: str = Field(
        "https://web.archive.org/cdx/search/cdx", description="Internet Archive CDX API"
    )
    wayback_output: Literal["json", "text"] = Field(
        "json", description="CDX output format asked for (both are parsed)"
    )
    wayback_raw: str = Field(
        "https://web.archive.org/web/{timestamp}id_/{url}",
        description="Wayback raw capture (id_ mode): the original bytes",
    )
    commoncrawl_collinfo: str = Field(
        "https://index.commoncrawl.org/collinfo.json",
        description="list of Common Crawl crawls and their CDX index servers",
    )
    commoncrawl_data: str = Field(
        "https://data.commoncrawl.org/", description="where the crawls' WARC files are served"
    )
    commoncrawl_crawls: int = Field(
        2, ge=1, description="crawls nearest to the post date whose index is asked"
    )
    max_captures: int = Field(
        50, ge=1, description="CDX rows read per lookup (nearest to the post date first)"
    )
    rate_wayback: float = Field(
        0.5, gt=0, description="requests/s to the Internet Archive, shared by a build's parts"
    )
    rate_commoncrawl: float = Field(
        1.0, gt=0, description="requests/s to Common Crawl, shared by a build's parts"
    )
    retries: int = Field(3, ge=0, description="retries of 429/503/5xx and network errors")
    backoff: float = Field(
        2.0, ge=0, description="first wait before a retry without Retry-After (s), doubling"
    )
    timeout: float = Field(30.0, gt=0, description="per archive request (s)")

    @field_validator("errors")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from schemas.records import CRAWL_ERRORS

        bad = [
            e
            for e in v
            if e not in CRAWL_ERRORS
            and e != "connection_refused"
            and not (e.startswith("http_") and e[5:].isdigit() and len(e) == 8)
        ]
        if bad:
            raise ValueError(f"unknown dead-link errors {bad}: use {list(CRAWL_ERRORS)}, http_NNN")
        return sorted(set(v))


# How pages are fetched, not what is kept: changing these never invalidates earlier fetches.
_TRANSPORT_FIELDS: Any = {
    "proxy": True,
    "recrawl_errors": True,
    "archive": {
        "rate_wayback",
        "rate_commoncrawl",
        "retries",
        "backoff",
        "timeout",
        # where the same archives answer (a mirror, a local fake on another port)
        "wayback_cdx",
        "wayback_output",
        "wayback_raw",
        "commoncrawl_collinfo",
        "commoncrawl_data",
    },
}


class CrawlConfig(Section):
    user_agent: str = Field(
        "webtext-crawler/0.1 (+https://github.com/webtext/webtext; crawl@webtext.invalid)",
        description="sent with every request, with a contact URL",
    )
    obey_robots: bool = Field(True, description="robots.txt, fetched once per site")
    concurrent_requests: int = Field(
        256,
        ge=1,
        description=(
            "requests under way in one crawl part, those waiting for their site's robots.txt, "
            "DNS or delay included"
        ),
    )
    concurrent_per_domain: int = Field(2, ge=1, description="concurrency per site")
    autothrottle: bool = Field(
        False,
        description=(
            "AutoThrottle: pace each site by the median of its last 9 latencies; off because at a "
            "target equal to concurrent_per_domain it only adds delays to what the cap allows"
        ),
    )
    autothrottle_target_concurrency: float = Field(
        2.0, gt=0, description="AutoThrottle's target requests in flight per site"
    )
    autothrottle_start_delay: float = Field(1.0, ge=0, description="first delay of a new site")
    autothrottle_max_delay: float = Field(
        30.0, ge=0, description="AutoThrottle's largest delay (s)"
    )
    download_delay: float = Field(
        0.0, ge=0, description="minimum delay between requests to a site (s)"
    )
    download_timeout: float = Field(
        15.0, gt=0, description="per request (s); a dead host costs about two of them"
    )
    dns_timeout: float = Field(10.0, gt=0, description="per lookup (s)")
    retry_times: int = Field(2, ge=0, description="retries of 5xx, 429, timeouts")
    max_retry_after: float = Field(30.0, ge=0, description="cap on a Retry-After wait (s)")
    max_redirects: int = Field(5, ge=0, description="longer chains end as too_many_redirects")
    max_bytes: int = Field(5_000_000, gt=0, description="download cap, also on decompressed bodies")
    content_types: list[str] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml"],
        description="responses of other types end as bad_content_type",
    )
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="hosts exempt from the private/loopback address guard (tests, demo)",
    )
    warc_max_bytes: int = Field(1_000_000_000, gt=0, description="WARC files rotate at this size")
    warc_gzip_level: int = Field(
        3, ge=1, le=9, description="3: half the CPU of 6 for ~8% larger WARC files (measured)"
    )
    proxy: str | None = Field(
        None,
        description="HTTP proxy for every request; the demo serves its virtual hosts this way",
    )
    host_max_failures: int = Field(
        3,
        ge=1,
        description=(
            "a host whose requests fail this many times in a row (timeout, refused, DNS) with no "
            "answer in between is given up: its other links end as host_unreachable unrequested"
        ),
    )
    dns_threads: int = Field(
        32, ge=1, description="threads for blocking DNS lookups per crawl process"
    )
    parallel_parts: int = Field(
        16,
        ge=1,
        description=(
            "crawl parts (subprocesses) run at once by a build with the local runner; they "
            "mostly wait on the network, so more than the cores"
        ),
    )
    loop_lag_target: float = Field(
        0.1,
        ge=0,
        description=(
            "seconds a crawl process's event loop may run late before the process hands out "
            "fewer new links (a window between 16, times the part's weight with "
            "share_by_work, and concurrent_requests, "
            "pipeline/crawl/window.py): answers then wait less on a busy machine; 0: no window"
        ),
    )
    min_cpu_idle: float = Field(
        0.03,
        ge=0,
        lt=1,
        description=(
            "share of the machine's CPU time (Linux /proc/stat) the crawl leaves idle: below "
            "it the windows shrink too, so answers do not queue for busy cores; 0: lag only"
        ),
    )
    share_by_work: bool = Field(
        True,
        description=(
            "crawl parts on one machine weigh their lag windows by their links left over the "
            "running parts' mean (pipeline/crawl/share.py): a part with more work gets more of "
            "a busy machine; false: equal windows"
        ),
    )
    fork_server: bool = Field(
        True,
        description=(
            "crawl parts fork from one process that has Scrapy imported (pipeline/crawl/"
            "forkserver.py) instead of each starting Python cold (~1.6 s CPU each)"
        ),
    )
    recrawl_errors: list[str] = Field(
        default_factory=lambda: ["timeout", "connection", "dns", "http_5xx", "archive_unavailable"],
        description=(
            "a changed links part reuses earlier fetches of its URLs; earlier failures with "
            "these (transient) errors are fetched again, any other outcome is kept"
        ),
    )

    dead_pages: bool = Field(
        True, description="200 pages that say not found or are parked count as soft_404/parked"
    )
    landing_min_links: int = Field(
        3,
        ge=0,
        description="this many links of one host redirected to one page count as soft_404 (0: off)",
    )
    archive: ArchiveConfig = Field(
        default_factory=ArchiveConfig, description="archive fallback (see crawl.archive.*)"
    )

    @field_validator("recrawl_errors")
    @classmethod
    def _known_errors(cls, v: list[str]) -> list[str]:
        from schemas.records import CRAWL_ERRORS

        unknown = sorted(set(v) - set(CRAWL_ERRORS))
        if unknown:
            raise ValueError(f"unknown crawl errors {unknown}; known: {list(CRAWL_ERRORS)}")
        return sorted(set(v))

    def fingerprint(self) -> str:
        """Hash of the settings that decide what the archive keeps (CRAWL_KEEP_FIELDS).
        Settings that only change how a page is fetched (concurrency, delays, timeouts,
        retries, user agent, proxy, WARC gzip level and rotation, recrawl_errors) are left
        out: changing them must never invalidate or refetch what the archive holds."""
        blob = json.dumps(self.kept_by(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def kept_by(self) -> dict[str, Any]:
        """The settings that decide which fetched pages are kept: recorded with each crawl
        part, so a later crawl can re-judge its archive against changed ones."""
        keep = self.model_dump(mode="json", include=set(CRAWL_KEEP_FIELDS))
        # Which links are dead and which archives are asked for them; not how fast or where.
        keep["archive"] = self.archive.model_dump(mode="json", include={"sources", "errors"})
        return keep


# What a crawl keeps depends on these CrawlConfig fields only; every other field changes how
# pages are fetched. content_types and max_bytes are re-judged from the archive's fetch rows;
# the others decide which earlier drops are fetched again (pipeline/crawl/previous.py).
CRAWL_KEEP_FIELDS = (
    "allow_hosts",
    "content_types",
    "dead_pages",
    "landing_min_links",
    "max_bytes",
    "max_redirects",
    "obey_robots",
)


class ExtractConfig(Section):
    # Defaults chosen on the Scrapinghub benchmark (benchmarks/extract_quality.py): fast +
    # recall + headline stripped = shingle F1 0.966 at ~60 pages/s, against 0.9598 for the
    # balanced mode (42 pages/s) and 0.9525 for trafilatura.extract()'s own defaults.
    favor_precision: bool = Field(False, description="trafilatura option")
    favor_recall: bool = Field(
        True, description="trafilatura option (chosen by F1 on the Scrapinghub set)"
    )
    include_comments: bool = Field(False, description="keep comment sections")
    include_tables: bool = Field(True, description="keep table text")
    fast: bool = Field(True, description="trafilatura fast mode: no fallback extractors")
    with_metadata: bool = Field(True, description="title and date (htmldate) per document")
    extensive_date_search: bool = Field(False, description="htmldate's slower search")
    strip_title: bool = Field(
        True, description="drop a first line equal to the title (kept in its own column)"
    )
    timeout_s: float = Field(
        30.0, gt=0, description="per-document cap; over it: ledger row extract_timeout"
    )
    lang_model: str | None = Field(None, description="path to lid.176.bin/.ftz; default: bundled")
    lang_prefix_chars: int = Field(
        1000, gt=0, description="language ID reads this many leading characters"
    )
    processes: int = Field(1, ge=1, description="worker processes per extract part")


class FilterConfig(Section):
    langs: list[str] = Field(
        default_factory=lambda: ["en"], description="languages kept (lid.176 labels)"
    )
    min_lang_score: float = Field(
        0.65, ge=0, le=1, description="lid.176 probability needed (FineWeb: 0.65)"
    )
    min_tokens: int = Field(128, ge=0, description="GPT-2 tokens; OpenWebText's minimum is 128")
    max_tokens: int | None = Field(None, description="null: no maximum")
    wikipedia_domains: list[str] = Field(
        default_factory=lambda: list(DEFAULT_WIKIPEDIA_DOMAINS),
        description="documents from these domains are dropped (GPT-2 removed Wikipedia)",
    )
    min_mean_word_len: float = Field(3.0, description="Gopher rule")
    max_mean_word_len: float = Field(10.0, description="Gopher rule")
    max_symbol_word_ratio: float = Field(0.1, description="Gopher rule: # and ... per word")
    min_frac_lines_end_punct: float = Field(0.0, description="C4-style rule (0: off)")
    max_dup_line_frac: float = Field(0.3, description="Gopher rule: duplicated lines")
    min_stop_words: int = Field(2, description="Gopher rule: English stop words present")
    max_bullet_line_frac: float = Field(
        0.9, description="Gopher rule: lines starting with a bullet"
    )
    max_ellipsis_line_frac: float = Field(
        0.3, description="Gopher rule: lines ending with an ellipsis"
    )
    max_boilerplate_hits: int | None = Field(
        None, description="lorem ipsum / cookie / javascript notices (null: off)"
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_fields(cls, data: Any) -> Any:
        moved = {
            "wikipedia_dump": "wikipedia.sources",
            "wiki_ngram": "wikipedia.ngram",
            "max_wiki_overlap": "wikipedia.paragraph_overlap (copied paragraphs are now "
            "stripped, not whole documents dropped)",
        }
        if isinstance(data, dict):
            for old, new in moved.items():
                if old in data:
                    raise ValueError(f"filter.{old} moved to {new}")
        return data


class WikipediaConfig(Section):
    """Copies of Wikipedia inside pages, found by word n-gram overlap with a reference."""

    sources: list[str] = Field(
        default_factory=list,
        description="reference text: MediaWiki pages-articles dumps (.xml, .xml.bz2, "
        "multistream too), Parquet in the wikimedia/wikipedia layout (a `text` column), .txt "
        "files; the index is built once into OUT/wikipedia/ (empty with no index: off)",
    )
    index: str | None = Field(
        None,
        description="an index folder made by `webtext wiki-index` (instead of sources)",
    )
    # 8 and 0.2, measured (tests/test_wikipedia.py): a paragraph with 10% of its words
    # changed keeps about 0.9^n of its n-grams, 0.43 at n=8 but 0.25 at n=13, where most
    # lightly edited copies were missed; independent prose shares almost no 8-grams.
    ngram: int = Field(8, ge=1, description="word n-gram length")
    paragraph_overlap: float = Field(
        0.2,
        gt=0,
        le=1,
        description="a paragraph (line) with at least this share of its n-grams in the "
        "reference is removed; a document left under filter.min_tokens is dropped as "
        "wikipedia_copy",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.sources) or self.index is not None


class DecontaminateConfig(Section):
    """Documents that share text with evaluation sets, dropped as GPT-3 did (off by default)."""

    eval_sets: dict[str, str] = Field(
        default_factory=dict,
        description="NAME: file of one evaluation example per line (.txt, or .jsonl with a "
        "`text` field); documents sharing n-grams with an example are dropped as eval_overlap",
    )
    ngram: int = Field(13, ge=1, description="word n-gram length (GPT-3: 13)")
    min_shared: int = Field(
        1, ge=1, description="drop a document sharing at least this many n-grams with one example"
    )


class OverlapConfig(Section):
    """GPT-2's audit: the share of each evaluation set's 8-grams found in the corpus."""

    eval_sets: dict[str, str] = Field(
        default_factory=dict,
        description="NAME: file of one evaluation example per line (.txt, or .jsonl with a "
        "`text` field); audited against the shards after a build (empty: off)",
    )
    ngram: int = Field(8, ge=1, description="word n-gram length (GPT-2: 8)")
    top_documents: int = Field(10, ge=0, description="documents listed per evaluation set")


class DedupConfig(Section):
    exact: bool = Field(True, description="drop documents whose normalized text is identical")
    near: bool = Field(True, description="drop near duplicates (MinHash LSH)")
    num_perm: int = Field(128, ge=16, description="MinHash permutations")
    ngram: int = Field(5, ge=1, description="word n-gram shingles")
    threshold: float = Field(
        0.8, gt=0, le=1, description="Jaccard similarity at which documents are duplicates"
    )
    # 21 bands x 6 rows: a pair at Jaccard 0.8 shares a band with p = 0.998 (16 x 8: 0.947),
    # at 0.73 with 0.97; candidates are then confirmed on the signatures.
    bands: int = Field(
        21, ge=1, description="LSH bands (bands x rows <= num_perm), chosen for recall"
    )
    rows: int = Field(6, ge=1, description="LSH rows per band")
    seed: int = Field(1, description="MinHash seed (datasketch-compatible)")
    confirm_z: float = Field(
        2.0,
        ge=0,
        description="confirm a candidate when its estimated Jaccard >= threshold minus this "
        "many standard errors of the estimator (0: estimate >= threshold, which misses about "
        "half of the pairs right at the threshold)",
    )
    reference_roots: list[str] = Field(
        default_factory=list,
        description="output roots of earlier builds: their kept documents' signatures are "
        "dedup references (already published, always kept); their text is never read",
    )
    spill_above: int = Field(
        5_000_000,
        ge=0,
        description="above this many documents, signatures are read from a file under "
        "OUT/dedup/ and LSH band keys grouped out of core (partition files, sorted one at a "
        "time) instead of held in memory",
    )
    spill_partitions: int = Field(64, ge=1, description="partitions of the out-of-core grouping")


class TokenizerConfig(Section):
    name: Literal["r50k_base", "gpt2"] = Field(
        "r50k_base", description="tiktoken encoding: GPT-2 BPE"
    )
    ranks_file: str | None = Field(None, description="local copy of r50k_base.tiktoken")


class ShardsConfig(Section):
    include_text: bool = Field(False, description="add the `text` column to the shards")
    max_rows_per_shard: int = Field(
        100_000,
        ge=1,
        description="documents per shard file: ceil(documents / this) files per split, "
        "documents spread over them by a seeded hash of id (so a file holds this many give or "
        "take a few hundred)",
    )
    row_group_size: int = Field(4096, ge=1, description="Parquet row group size")
    val_fraction: float = Field(
        0.0005, ge=0, lt=1, description="share of documents in the val split (by a hash of id)"
    )
    seed: int = Field(1234, description="shuffle seed")


class RunnerConfig(Section):
    kind: Literal["threads", "dask"] = Field(
        "threads", description="threads: local; dask: prefect-dask DaskTaskRunner"
    )
    max_workers: int = Field(2, ge=1, description="threads of the local runner")
    dask_address: str | None = Field(
        None, description="existing Dask scheduler; null: start a local cluster"
    )
    dask_workers: int = Field(2, ge=1, description="worker processes of the local Dask cluster")


class CorpusConfig(Section):
    name: str = Field("webtext", description="corpus name: dataset card title, artifact keys")
    out_dir: str = Field("build", description="output root (relative to the config file)")
    harvest: HarvestConfig = Field(default_factory=HarvestConfig)
    crawl: CrawlConfig = Field(default_factory=CrawlConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    shards: ShardsConfig = Field(default_factory=ShardsConfig)
    wikipedia: WikipediaConfig = Field(default_factory=WikipediaConfig)
    decontaminate: DecontaminateConfig = Field(default_factory=DecontaminateConfig)
    overlap: OverlapConfig = Field(default_factory=OverlapConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, v: str) -> str:
        if not v or any(c in v for c in "/\\\n"):
            raise ValueError("must be a non-empty name without slashes")
        return v

    @property
    def out_path(self) -> Path:
        return Path(self.out_dir)


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], source: str = "<dict>") -> CorpusConfig:
    try:
        return CorpusConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def _resolve(base: Path, p: str) -> str:
    if "://" in p or Path(p).is_absolute():
        return p
    return str((base / p).resolve())


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> CorpusConfig:
    """Load a YAML config; relative paths inside it are relative to the file's folder."""
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ConfigError(f"invalid YAML in {p}: {err}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"invalid config {p}: top level must be a mapping")
        data = loaded
        base = p.resolve().parent
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    cfg = parse_config(data, str(path) if path else "<defaults>")
    cfg.out_dir = _resolve(base, cfg.out_dir)
    cfg.harvest.inputs = [_resolve(base, p) for p in cfg.harvest.inputs]
    if cfg.harvest.arctic_shift.dump_dir:
        cfg.harvest.arctic_shift.dump_dir = _resolve(base, cfg.harvest.arctic_shift.dump_dir)
    cfg.dedup.reference_roots = [_resolve(base, p) for p in cfg.dedup.reference_roots]
    for section, attr in (
        (cfg.harvest, "takedown_file"),
        (cfg.extract, "lang_model"),
        (cfg.tokenizer, "ranks_file"),
        (cfg.wikipedia, "index"),
    ):
        value = getattr(section, attr)
        if value:
            setattr(section, attr, _resolve(base, value))
    cfg.wikipedia.sources = [_resolve(base, p) for p in cfg.wikipedia.sources]
    for sets in (cfg.decontaminate.eval_sets, cfg.overlap.eval_sets):
        for name in sets:
            sets[name] = _resolve(base, sets[name])
    return cfg


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def reference_markdown() -> str:
    """The config reference for README.md: every field, its default and what it means."""
    lines = ["| field | default | meaning |", "|---|---|---|"]

    def walk(model: BaseModel, prefix: str) -> None:
        for name, info in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, Section):
                walk(value, f"{prefix}{name}.")
                continue
            default = json.dumps(value, default=str)
            if len(default) > 60:
                default = default[:57] + "..."
            lines.append(f"| `{prefix}{name}` | `{default}` | {info.description or ''} |")

    walk(CorpusConfig(), "")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown())
