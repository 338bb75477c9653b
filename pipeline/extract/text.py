"""Main text of one page: trafilatura with the extract config, under a per-document time cap."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import trafilatura

from pipeline.core.config import ExtractConfig, TokenizerConfig
from pipeline.extract.warc import DecodeError, decode_html

log = logging.getLogger(__name__)

# Extraction cost grows with page size; a page bigger than this is not an article. The crawl
# caps downloads too (crawl.max_bytes); this guards WARCs written by other tools.
MAX_HTML_CHARS = 20_000_000


class ExtractTimeout(BaseException):
    """Raised by the alarm handler. A BaseException so that library code catching Exception
    (trafilatura catches ValueError/TypeError, htmldate more) cannot swallow it."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What a worker needs, picklable: the extract and tokenizer sections."""

    extract: ExtractConfig
    tokenizer: TokenizerConfig

    def trafilatura_kwargs(self) -> dict[str, Any]:
        e = self.extract
        return {
            "favor_precision": e.favor_precision,
            "favor_recall": e.favor_recall,
            "include_comments": e.include_comments,
            "include_tables": e.include_tables,
            "fast": e.fast,
            "deduplicate": False,
            "with_metadata": e.with_metadata,
            "date_extraction_params": {"extensive_search": e.extensive_date_search},
        }


# ---------------------------------------------------------------------------------------------
# per-record functions


def _strip_title(text: str, title: str | None) -> str:
    """Drop a leading headline line that repeats the title: the title has its own column,
    and article bodies (the benchmark's gold, GPT-2's extractors) do not include it."""
    first, sep, rest = text.partition("\n")
    first = first.strip()
    if title and sep and first and (first in title or title.startswith(first)):
        return rest.strip()
    return text


def run_trafilatura(
    html: str, url: str | None, settings: Settings
) -> tuple[str | None, str | None, str | None]:
    """(text, title, date) of one decoded page; text None when nothing was extracted."""
    doc = trafilatura.bare_extraction(
        html[:MAX_HTML_CHARS], url=url, **settings.trafilatura_kwargs()
    )
    if doc is None or isinstance(doc, dict):  # dict only with the deprecated as_dict
        return None, None, None
    title = doc.title or None
    text = (doc.text or "").strip()
    if text and settings.extract.strip_title:
        text = _strip_title(text, title)
    return (text or None), title, (doc.date or None)


def extract_document(
    html: str | bytes, url: str | None, cfg: ExtractConfig
) -> tuple[str | None, str | None, str | None]:
    """(text, title, date) of one page with the given options, no time cap."""
    if isinstance(html, bytes):
        html, _ = decode_html(html)
    if not html.strip():
        return None, None, None
    return run_trafilatura(html, url, Settings(cfg, TokenizerConfig()))


def extract_text(html: str | bytes, url: str | None = None) -> str | None:
    """Main text of one HTML page with the default config; None when nothing is extracted
    (empty page, binary body, no main content). No time cap: callers wanting one use
    `time_cap`."""
    try:
        return extract_document(html, url, ExtractConfig())[0]
    except DecodeError:
        return None


@contextmanager
def time_cap(seconds: float) -> Iterator[None]:
    """Raise ExtractTimeout if the body runs longer than `seconds`.

    SIGALRM interrupts pure-Python loops (where trafilatura spends its time); it only works
    in a process's main thread, so elsewhere the body runs uncapped and the driver uses
    worker processes instead.
    """
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise ExtractTimeout()

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
