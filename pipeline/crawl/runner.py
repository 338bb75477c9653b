"""The crawl subprocess: Scrapy settings from CrawlConfig, resume from the journal, run once.

Imported only by `python -m pipeline.crawl` (Twisted's reactor runs once per process).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import select
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from scrapy.logformatter import LogFormatter

from pipeline.core.config import CrawlConfig
from pipeline.core.io import sha256_file
from pipeline.core.progress import PartProgress
from pipeline.crawl.heap import CollectorClock, tune_for_crawl
from pipeline.crawl.journal import Journal, journal_path, last_warc_location, read_journal
from pipeline.crawl.sink import ArchiveSink
from pipeline.crawl.warc import WarcRotator

log = logging.getLogger(__name__)

RESOLVER_ENV = "WEBTEXT_DNS_RESOLVER"
_PROXY_ENV = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


class QuietLogFormatter(LogFormatter):
    """Scrapy's messages, without the per-response "Crawled (200)" unless DEBUG is on: Scrapy
    builds that record for every response and only its handler drops it (2% of a crawl
    process's CPU, sampled with py-spy)."""

    debug = False

    @classmethod
    def from_crawler(cls, crawler: Any) -> QuietLogFormatter:
        formatter = cls()
        level = crawler.settings.get("LOG_LEVEL", "DEBUG")
        if isinstance(level, str):
            level = logging.getLevelName(level.upper())
        formatter.debug = not isinstance(level, int) or level <= logging.DEBUG
        return formatter

    def crawled(self, request: Any, response: Any, spider: Any) -> Any:
        return super().crawled(request, response, spider) if self.debug else None


class UnreachableRobotsFilter(logging.Filter):
    """Scrapy logs a robots.txt it could not fetch as an ERROR with its traceback. A host that
    does not resolve, refuses or times out is an outcome its links' ledger rows record: here
    it is one INFO line. At WebText's size (a third of 2017's hosts gone) the tracebacks were
    most of the crawl's log: 1.4 MB per 40,000 links on the benchmark web."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pipeline.crawl.hosts import unreachable_reason

        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.ERROR and exc is not None and unreachable_reason(exc):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True


def scrapy_settings(cfg: CrawlConfig) -> dict[str, Any]:
    mw = "pipeline.crawl.middlewares"
    return {
        "BOT_NAME": "webtext",
        # Twisted's own epoll reactor (Linux): Scrapy's default asyncio one costs about 8% more
        # CPU per page here (single-part runs, 24.7 vs 27.0 s for 6,000 links); nothing in the
        # crawl needs asyncio (Scrapy's sleep and call_later work on either).
        "TWISTED_REACTOR": (
            "twisted.internet.epollreactor.EPollReactor"
            if hasattr(select, "epoll")
            else "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
        ),
        "USER_AGENT": cfg.user_agent,
        "ROBOTSTXT_OBEY": cfg.obey_robots,
        "CONCURRENT_REQUESTS": cfg.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": cfg.concurrent_per_domain,
        "DOWNLOAD_DELAY": cfg.download_delay,
        "RANDOMIZE_DOWNLOAD_DELAY": True,
        "AUTOTHROTTLE_ENABLED": cfg.autothrottle,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": cfg.autothrottle_target_concurrency,
        "AUTOTHROTTLE_START_DELAY": cfg.autothrottle_start_delay,
        "AUTOTHROTTLE_MAX_DELAY": cfg.autothrottle_max_delay,
        "EXTENSIONS": {
            "scrapy.extensions.throttle.AutoThrottle": None,
            "pipeline.crawl.throttle.MedianThrottle": 0,
            # Scrapy 2.19's remote control is an HTTP server that runs Python code sent to it,
            # on by default wherever asyncio runs (the non-Linux reactor here): never in a
            # process that fetches the open web.
            "scrapy.extensions.remote_control.RemoteControl": None,
        },
        "REMOTE_CONTROL_ENABLED": False,
        "DOWNLOAD_TIMEOUT": cfg.download_timeout,
        "DNS_TIMEOUT": cfg.dns_timeout,
        "RETRY_ENABLED": cfg.retry_times > 0,
        "RETRY_TIMES": cfg.retry_times,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        # A page that stays down is an outcome (a ledger row), not an error of the crawler.
        "RETRY_GIVE_UP_LOG_LEVEL": "INFO",
        "REDIRECT_MAX_TIMES": cfg.max_redirects,
        "DOWNLOAD_MAXSIZE": cfg.max_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        # The spider yields nothing: Scrapy would still start CONCURRENT_ITEMS (100) asyncio
        # tasks per response to drain that nothing, a third of the CPU at 400 pages/s.
        "CONCURRENT_ITEMS": 1,
        "COOKIES_ENABLED": False,
        # Scrapy's defaults, plus gzip only: a gzip body goes into the WARC file as it came
        # (pipeline.crawl.warc), where br or zstd would be decoded and compressed again, and
        # zstd is a coding WARC readers do not decode.
        "DEFAULT_REQUEST_HEADERS": {
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "en",
            "Accept-Encoding": "gzip, deflate",
        },
        # The spider hands out the next links from its callbacks: no page is another's referrer.
        "REFERER_ENABLED": False,
        "METAREFRESH_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "INFO",
        "LOG_FORMATTER": "pipeline.crawl.runner.QuietLogFormatter",
        # Scrapy reads a callback's source (inspect) to warn about a generator's return value;
        # its cache misses bound methods, so that was every response (1% of the CPU).
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        "LOGSTATS_INTERVAL": 30.0,
        "TWISTED_DNS_RESOLVER": _resolver(),
        # Blocking getaddrinfo calls run in the reactor's thread pool: with Scrapy's 10 threads,
        # ten slow names stall every new host of the part.
        "REACTOR_THREADPOOL_MAXSIZE": cfg.dns_threads,
        "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.DownloaderAwarePriorityQueue",
        # Per-request machinery the crawl does not use: each middleware is a coroutine hop
        # per request and per response. DownloaderStats also serializes every whole response
        # to count its bytes.
        "DOWNLOADER_STATS": False,
        "DOWNLOAD_HANDLERS": {
            "http": "pipeline.crawl.handler.PlaceHoldingDownloadHandler",
            "https": "pipeline.crawl.handler.PlaceHoldingDownloadHandler",
        },
        "SPIDER_MIDDLEWARES": {
            "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
            "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
            "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
        },
        "DOWNLOADER_MIDDLEWARES": {
            # No allowed_domains, no HTTP auth.
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
            "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
            f"{mw}.GuardMiddleware": 40,
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            f"{mw}.SharedRobotsTxtMiddleware": 100,
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            f"{mw}.RetryAfterMiddleware": 550,
            f"{mw}.ResponseCheckMiddleware": 595,
            "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
            "pipeline.crawl.decode.FastHttpCompressionMiddleware": 590,
            "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
            f"{mw}.SafeRedirectMiddleware": 600,
            "pipeline.crawl.hosts.HostGiveUpMiddleware": 650,
        },
        "WEBTEXT_ALLOW_HOSTS": list(cfg.allow_hosts),
        "WEBTEXT_PROXY": cfg.proxy or "",
        "WEBTEXT_MAX_RETRY_AFTER": cfg.max_retry_after,
        "WEBTEXT_HOST_MAX_FAILURES": cfg.host_max_failures,
        "WEBTEXT_LOOP_LAG_TARGET": cfg.loop_lag_target,
        "WEBTEXT_MIN_CPU_IDLE": cfg.min_cpu_idle,
    }


def _resolver() -> str:
    """The resolver class: the guarded one, or (benchmarks) a subclass of it named by
    WEBTEXT_DNS_RESOLVER that answers from a table; never one without the address guard."""
    path = os.environ.get(RESOLVER_ENV)
    if not path:
        return "pipeline.crawl.guard.GuardedResolver"
    from scrapy.utils.misc import load_object

    from pipeline.crawl.guard import GuardedResolver

    cls = load_object(path)
    if not (isinstance(cls, type) and issubclass(cls, GuardedResolver)):
        raise TypeError(f"{RESOLVER_ENV}={path} is not a subclass of GuardedResolver")
    return path


def read_links(path: Path) -> list[str]:
    urls = pq.read_table(path, columns=["url"]).column("url").to_pylist()
    seen: set[str] = set()
    out = []
    for u in urls:
        if u not in seen:  # harvest writes unique URLs; a duplicate still gets one row only
            seen.add(u)
            out.append(u)
    return out


def run_header(
    links_path: Path, cfg: CrawlConfig, version: int, warc_start: int = 0
) -> dict[str, Any]:
    header: dict[str, Any] = {
        "links_sha256": sha256_file(links_path),
        "config": cfg.fingerprint(),
        "version": version,
    }
    if warc_start:
        # An incremental crawl: its WARC files start after the earlier result's.
        header["warc_start"] = warc_start
    return header


def crawl(
    links_path: Path,
    root: Path,
    part: str,
    cfg: CrawlConfig,
    version: int,
    archive: bool = True,
    warc_start: int = 0,
) -> dict[str, Any]:
    """Crawl every link of the part not yet in the journal; return a summary.

    `warc_start`: number of the first WARC file to write; files before it (an earlier
    result of the part that the driver carries over) are never touched."""
    from scrapy.crawler import CrawlerProcess

    from pipeline.crawl.spider import LinkSpider, Recorder

    for var in _PROXY_ENV:
        # Only crawl.proxy may route requests: an inherited proxy would bypass the guard.
        os.environ.pop(var, None)

    links = read_links(links_path)
    journal = warc = None
    done: set[str] = set()
    resumed = 0
    if archive:
        # One crawl per part at a time: a second one waits here instead of interleaving
        # journal lines and WARC records with the first.
        lock_path = journal_path(root, part).parent / "lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        header = run_header(links_path, cfg, version, warc_start)
        jpath = journal_path(root, part)
        rows = read_journal(jpath, header)
        warc = WarcRotator(
            root,
            part,
            cfg.warc_max_bytes,
            software=f"webtext-crawl/{version} (scrapy)",
            info={
                "http-header-user-agent": cfg.user_agent,
                "config-fingerprint": cfg.fingerprint(),
            },
            gzip_level=cfg.warc_gzip_level,
            first_index=warc_start,
        )
        if rows is not None and not warc.can_recover(last_warc_location(rows)):
            log.warning("%s: WARC files do not match the journal; crawling the part again", part)
            rows = None
        if rows is None:
            warc.remove_all()
        else:
            # Keep only the rows whose WARC records are whole; a torn tail is cut.
            warc.recover(last_warc_location(rows))
            done = {r["url"] for r in rows}
            resumed = len(rows)
        journal = Journal(jpath, header, rows)

    sink = ArchiveSink(warc, journal) if warc is not None and journal is not None else None
    progress = PartProgress(root, "crawl", part, total=len(links)) if archive else None
    if progress is not None:
        progress.done = len(done)
    recorder = Recorder(links, done, sink, cfg.content_types, progress, cfg.dead_pages)
    settings = scrapy_settings(cfg)
    if cfg.share_by_work:
        settings["WEBTEXT_LOAD_BOARD"] = str(Path(root) / "crawl" / "_work" / "_load")
        settings["WEBTEXT_PART"] = part
    process = CrawlerProcess(settings, install_root_handler=True)
    logging.getLogger("scrapy.downloadermiddlewares.robotstxt").addFilter(UnreachableRobotsFilter())
    crawler = process.create_crawler(LinkSpider)
    t0 = time.monotonic()
    process.crawl(crawler, links=links, recorder=recorder)
    tune_for_crawl()
    collector = CollectorClock()
    collector.start()
    process.start()
    collector.stop()
    wall = time.monotonic() - t0
    spider: Any = crawler.spider
    crawl_s = (spider.t_close or time.monotonic()) - (spider.t_open or t0) if spider else wall

    finished = spider is not None and spider.close_reason == "finished"
    if finished:
        # Scrapy delivers an outcome for every request; a link it lost still gets its row.
        for url in links:
            if url not in recorder.done:
                recorder.refuse(url, "other", "no outcome from the crawler")
    # Stopped early (SIGTERM, SIGINT): the links left are not journaled, so a rerun resumes
    # them instead of recording them as failures.
    if sink is not None:
        sink.close()
    fetched = recorder.n_recorded
    return {
        "part": part,
        "links": len(links),
        "resumed": resumed,
        "fetched_now": fetched,
        "kept_now": recorder.n_kept,
        "crawl_seconds": round(crawl_s, 3),
        "pages_per_s": round(fetched / crawl_s, 1) if crawl_s > 0 else None,
        # CPU of the crawl process itself: a figure the other loads on a shared box skew less.
        "cpu_seconds": round(spider.cpu_close - spider.cpu_open, 3) if spider else None,
        # How the lag window behaved (pipeline/crawl/window.py): where a busy part's time went.
        **(spider.window.summary() if spider is not None and spider.window is not None else {}),
        **collector.summary(),
        "archive": archive,
        "finished": finished,
    }


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, sort_keys=True) + "\n")
