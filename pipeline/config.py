"""Corpus config: pydantic models with the GPT-2 WebText recipe as defaults.

A YAML file may set any subset of fields; everything it leaves out keeps its default. Unknown
keys are errors, so a typo fails loudly instead of silently keeping a default.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.errors import ConfigError

# Media and file hosts whose links rarely lead to text. Text sites (github.com, google.com)
# stay: WebText kept them, OpenWebText's blocklist wrongly dropped them.
DEFAULT_BLOCKED_DOMAINS = [
    "imgur.com", "i.redd.it", "v.redd.it", "redd.it", "reddituploads.com", "redditmedia.com",
    "youtube.com", "youtu.be", "vimeo.com", "dailymotion.com", "twitch.tv", "liveleak.com",
    "gfycat.com", "giphy.com", "tinypic.com", "photobucket.com", "flickr.com", "instagram.com",
    "pinterest.com", "500px.com", "deviantart.com", "streamable.com", "soundcloud.com",
    "spotify.com", "bandcamp.com", "gyazo.com", "puu.sh", "minus.com", "imageshack.us",
    "imgflip.com", "quickmeme.com", "memegenerator.net", "livememe.com", "makeameme.org",
    "facebook.com", "fbcdn.net", "twimg.com", "pornhub.com", "xvideos.com", "xhamster.com",
]
DEFAULT_BLOCKED_EXTENSIONS = [
    "jpg", "jpeg", "png", "gif", "gifv", "webp", "bmp", "tif", "tiff", "svg", "ico",
    "mp4", "webm", "mkv", "avi", "mov", "wmv", "flv", "m4v", "mp3", "wav", "ogg", "flac", "m4a",
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt",
    "zip", "rar", "7z", "gz", "tgz", "bz2", "xz", "tar", "iso", "dmg", "exe", "msi", "apk",
    "deb", "rpm", "bin", "torrent", "swf", "psd", "csv", "json", "xml",
]
DEFAULT_WIKIPEDIA_DOMAINS = [
    "wikipedia.org", "wikimedia.org", "wikiwand.com", "wikibooks.org", "wikisource.org",
    "wiktionary.org", "wikiquote.org", "wikinews.org", "wikiversity.org", "wikivoyage.org",
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


class HarvestConfig(Section):
    inputs: list[str] = Field(default_factory=list, description="dump files, globs or folders")
    min_karma: int = 3
    karma_mode: Literal["per_post", "summed"] = "per_post"
    start_date: date | None = None
    end_date: date | None = date(2017, 12, 31)
    allow_self_posts: bool = False
    include_nsfw: bool = False
    subreddit_blocklist: list[str] = Field(default_factory=list)
    subreddit_allowlist: list[str] = Field(default_factory=list)
    blocked_domains: list[str] = Field(default_factory=lambda: list(DEFAULT_BLOCKED_DOMAINS))
    blocked_extensions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_EXTENSIONS)
    )
    max_url_length: int = Field(2048, gt=0)
    takedown_file: str | None = None
    n_parts: int = Field(16, ge=1, le=100000)
    api: RedditApiConfig = Field(default_factory=RedditApiConfig)
    drop_removed: bool = Field(
        True, description="drop posts with removed_by_category set (mod/admin/spam removals)"
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


class CrawlConfig(Section):
    user_agent: str = "webtext-crawler/0.1 (+https://github.com/webtext/webtext; crawl@webtext.invalid)"
    obey_robots: bool = True
    concurrent_requests: int = Field(64, ge=1)
    concurrent_per_domain: int = Field(2, ge=1)
    autothrottle: bool = True
    autothrottle_target_concurrency: float = Field(2.0, gt=0)
    autothrottle_start_delay: float = Field(1.0, ge=0, description="first delay of a new site")
    autothrottle_max_delay: float = Field(30.0, ge=0)
    download_delay: float = Field(0.0, ge=0)
    download_timeout: float = Field(20.0, gt=0)
    dns_timeout: float = Field(10.0, gt=0)
    retry_times: int = Field(2, ge=0)
    max_retry_after: float = Field(30.0, ge=0)
    max_redirects: int = Field(5, ge=0)
    max_bytes: int = Field(5_000_000, gt=0)
    content_types: list[str] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml"]
    )
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="hosts exempt from the private/loopback address guard (tests, demo)",
    )
    warc_max_bytes: int = Field(1_000_000_000, gt=0)
    warc_gzip_level: int = Field(
        3, ge=1, le=9, description="3: half the CPU of 6 for ~8% larger WARC files (measured)"
    )
    proxy: str | None = Field(
        None,
        description="HTTP proxy for every request; the demo serves its virtual hosts this way",
    )

    def fingerprint(self) -> str:
        # The proxy is transport, not content: a demo rerun on a new port must not recrawl.
        blob = json.dumps(self.model_dump(mode="json", exclude={"proxy"}), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ExtractConfig(Section):
    # Defaults chosen on the Scrapinghub benchmark (benchmarks/extract_quality.py): fast +
    # recall + headline stripped = shingle F1 0.966 at ~60 pages/s, against 0.9598 for the
    # balanced mode (42 pages/s) and 0.9525 for trafilatura.extract()'s own defaults.
    favor_precision: bool = False
    favor_recall: bool = True
    include_comments: bool = False
    include_tables: bool = True
    fast: bool = Field(True, description="trafilatura fast mode: no fallback extractors")
    with_metadata: bool = Field(True, description="title and date (htmldate) per document")
    extensive_date_search: bool = False
    strip_title: bool = Field(
        True, description="drop a first line equal to the title (kept in its own column)"
    )
    timeout_s: float = Field(30.0, gt=0)
    lang_model: str | None = Field(None, description="path to lid.176.bin/.ftz; default: bundled")
    lang_prefix_chars: int = Field(1000, gt=0)
    processes: int = Field(1, ge=1)


class FilterConfig(Section):
    langs: list[str] = Field(default_factory=lambda: ["en"])
    min_lang_score: float = Field(0.65, ge=0, le=1)
    min_tokens: int = Field(128, ge=0)
    max_tokens: int | None = None
    wikipedia_domains: list[str] = Field(default_factory=lambda: list(DEFAULT_WIKIPEDIA_DOMAINS))
    min_mean_word_len: float = 3.0
    max_mean_word_len: float = 10.0
    max_symbol_word_ratio: float = 0.1
    min_frac_lines_end_punct: float = 0.0
    max_dup_line_frac: float = 0.3
    min_stop_words: int = 2
    max_bullet_line_frac: float = 0.9
    max_ellipsis_line_frac: float = 0.3
    max_boilerplate_hits: int | None = None


class DedupConfig(Section):
    exact: bool = True
    near: bool = True
    num_perm: int = Field(128, ge=16)
    ngram: int = Field(5, ge=1)
    threshold: float = Field(0.8, gt=0, le=1)
    # 21 bands x 6 rows: a pair at Jaccard 0.8 shares a band with p = 0.998 (16 x 8: 0.947),
    # at 0.73 with 0.97; candidates are then confirmed on the signatures.
    bands: int = Field(21, ge=1)
    rows: int = Field(6, ge=1)
    seed: int = 1
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
        description="above this many documents, LSH band keys are grouped out of core "
        "(partitioned Parquet, sorted per partition) instead of in memory",
    )
    spill_partitions: int = Field(64, ge=1)


class TokenizerConfig(Section):
    name: Literal["r50k_base", "gpt2"] = "r50k_base"
    ranks_file: str | None = Field(None, description="local copy of r50k_base.tiktoken")


class ShardsConfig(Section):
    include_text: bool = False
    max_rows_per_shard: int = Field(100_000, ge=1)
    row_group_size: int = Field(4096, ge=1)
    val_fraction: float = Field(0.0005, ge=0, lt=1)
    seed: int = 1234


class RunnerConfig(Section):
    kind: Literal["threads", "dask"] = "threads"
    max_workers: int = Field(2, ge=1)
    dask_address: str | None = None
    dask_workers: int = Field(2, ge=1)


class CorpusConfig(Section):
    name: str = "webtext"
    out_dir: str = "build"
    harvest: HarvestConfig = Field(default_factory=HarvestConfig)
    crawl: CrawlConfig = Field(default_factory=CrawlConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    shards: ShardsConfig = Field(default_factory=ShardsConfig)
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
    cfg.dedup.reference_roots = [_resolve(base, p) for p in cfg.dedup.reference_roots]
    for section, attr in (
        (cfg.harvest, "takedown_file"),
        (cfg.extract, "lang_model"),
        (cfg.tokenizer, "ranks_file"),
    ):
        value = getattr(section, attr)
        if value:
            setattr(section, attr, _resolve(base, value))
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
    top = CorpusConfig()
    for name, info in CorpusConfig.model_fields.items():
        value = getattr(top, name)
        if isinstance(value, Section):
            for sub, sub_info in type(value).model_fields.items():
                default = json.dumps(getattr(value, sub), default=str)
                if len(default) > 60:
                    default = default[:57] + "..."
                lines.append(
                    f"| `{name}.{sub}` | `{default}` | {sub_info.description or ''} |"
                )
        else:
            lines.append(f"| `{name}` | `{json.dumps(value)}` | {info.description or ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown())
