"""Crawl stage: Scrapy, one subprocess per links part.

Reads: links/part-NNNNN.parquet. Writes: crawl/warc/part-NNNNN-MMMMM.warc.gz,
crawl/fetches/part-NNNNN.parquet, ledger/crawl/. Drops: schemas.records.CRAWL_ERRORS (robots,
timeout, dns, connection, http_4xx, bad_content_type, ...). Driver: `run_part`.

`run_part(links_part, root, cfg)` is the per-part driver. It starts `python -m pipeline.crawl`
(the subprocess crawls and appends every outcome to a journal, archiving kept pages to WARC),
then turns the journal into the fetch log (exactly one row per link, sorted by url) and the
ledger. A killed crawl resumes from its journal: no link is fetched into the output twice and
none is lost. This module does not import Scrapy, so importing it costs nothing.

The WARC archive is append-only. A changed links part (a new month merged in), changed keep
settings or a VERSION bump re-judge the earlier result: fetch rows of URLs still in the part
are carried over and only what the archive lacks is fetched, into new WARC files
(pipeline/crawl/previous.py).

Dead links (404/410, DNS gone, refused, and 200 pages that are soft 404s or parked:
deadpage.py) are looked up in web archives when crawl.archive.sources is set (fallback.py, the
one hook after the live crawl; archive/): a recovered capture is a kept row with `source`
wayback or commoncrawl, a failed lookup one drop with an `archive_*` reason.
"""

from pipeline.crawl.driver import (
    STAGE,
    VERSION,
    crawl_subprocess,
    fetches_path,
    finalize,
    run_part,
)

__all__ = ["STAGE", "VERSION", "crawl_subprocess", "fetches_path", "finalize", "run_part"]
