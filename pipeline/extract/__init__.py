"""extract stage: WARC responses -> docs/<part>.parquet (text, metadata, language, signals).

Reads: a links part, its crawl/fetches part and the WARC records they point to. Writes:
docs/part-NNNNN.parquet, docs/_index/, ledger/extract/. Drops: warc_error, decode_error,
extract_empty, extract_timeout, extract_error, missing_link. Driver: `run_part`.

Per fetched page: read the response record at its WARC offset, decode (HTTP charset, meta,
detection), extract the main text with trafilatura (its own deduplication off: it keeps a
process-wide cache, which would make the output depend on the order and batching of pages),
under a per-document time cap, then language ID on a prefix, quality signals and the GPT-2
token count. Pages are processed in worker processes that load the models once.

A part that re-runs because its inputs changed (a new month's links and fetch rows) extracts
only the pages it has no earlier outcome for; pipeline/extract/previous.py says when the
earlier result is trusted. docs/_index/<part>.parquet records the fetch row of every page.
"""

from pipeline.extract.driver import STAGE, VERSION, config_fingerprint, process_page, run_part
from pipeline.extract.text import Settings, extract_document, extract_text, run_trafilatura

__all__ = [
    "STAGE",
    "VERSION",
    "Settings",
    "config_fingerprint",
    "extract_document",
    "extract_text",
    "process_page",
    "run_part",
    "run_trafilatura",
]
