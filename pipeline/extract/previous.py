"""Reuse of a part's earlier extraction when its inputs changed.

A scheduled build merges each new month's links into the existing links parts, and the crawl
carries the earlier fetch rows over unchanged (same WARC file, offset and length) while it adds
rows for new URLs. The fetches part's bytes change, so the extract part's done marker stops
matching; extracting the whole part again would run trafilatura on every page of every earlier
month once a month. Instead the driver takes the earlier outcome of a page (its docs row minus
the link metadata, which is joined again from the new links part because karma, subreddits,
first_seen and the Reddit title change with reposts; or its ledger row) whenever the page's
fetch row is the one that was extracted then, and extracts only the other pages.

"The same page" means: the same url, final_url, content_type, warc_file, warc_offset and
warc_length (all that `process_page` reads from the fetch row) as recorded in the part's index
(`docs/_index/<part>.parquet`, one row per page that went through extraction), and the WARC
file is unchanged since the earlier run read it, by core.reuse's rule (a full recrawl rewrites
WARC files under the same names).

The earlier result is used only when all of it is there and made the same way: the done marker
`_done/extract/<part>.json` names the same extract config fingerprint and stage VERSION
(core.reuse.earlier_run), every output it lists (docs part, ledger part, index) is unchanged
by the same rule (so a build killed between writing a new docs part and its marker is never
mixed with an older index), and the three files read with their schemas. Otherwise the part is
extracted in full.

Not reused: `warc_error` outcomes (reading the record failed, perhaps an I/O hiccup; retrying is
cheap). Timeouts are reused: a page that hit the per-document cap costs the whole cap again
on every retry, and a full re-extraction of such a page is no more deterministic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.core.io import read_table
from pipeline.core.reuse import EarlierRun, earlier_run
from schemas.records import DOCS_SCHEMA, LEDGER_SCHEMA

log = logging.getLogger(__name__)

# The fetch-row fields an extraction outcome depends on (besides the WARC record's bytes).
KEY_FIELDS = ("url", "final_url", "content_type", "warc_file", "warc_offset", "warc_length")

INDEX_SCHEMA = pa.schema(
    [
        pa.field("url", pa.string(), nullable=False),
        pa.field("final_url", pa.string()),
        pa.field("content_type", pa.string()),
        pa.field("warc_file", pa.string(), nullable=False),
        pa.field("warc_offset", pa.int64(), nullable=False),
        pa.field("warc_length", pa.int64()),
    ]
)

# DOCS_SCHEMA columns the driver fills from the fetch row and the links part; the others are
# the page's extraction outcome (what `process_page` returns under "doc").
DRIVER_FIELDS = frozenset(
    {
        "id",
        "url",
        "final_url",
        "domain",
        "host",
        "karma",
        "subreddits",
        "first_seen",
        "reddit_title",
        "wiki_overlap",
        "source",
        "captured_at",
    }
)
PAGE_FIELDS = tuple(n for n in DOCS_SCHEMA.names if n not in DRIVER_FIELDS)

# Drop reasons `process_page` gives; of them, these are extracted again rather than reused.
PAGE_REASONS = frozenset(
    {"warc_error", "decode_error", "extract_empty", "extract_timeout", "extract_error"}
)
RETRY_REASONS = frozenset({"warc_error"})


def index_path(root: Path, part: str) -> Path:
    return Path(root) / "docs" / "_index" / f"{part}.parquet"


def page_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in KEY_FIELDS)


@dataclass
class Previous:
    """The reusable earlier outcomes of one extract part."""

    earlier: EarlierRun
    outcomes: dict[tuple[Any, ...], dict[str, Any]]  # page key -> process_page-style result
    _unchanged: dict[str, bool] = field(default_factory=dict)

    def _warc_unchanged(self, rel: str) -> bool:
        if rel not in self._unchanged:
            self._unchanged[rel] = self.earlier.input_unchanged(rel)
        return self._unchanged[rel]

    def outcome(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """The earlier result for this fetch row, or None when it must be extracted."""
        res = self.outcomes.get(page_key(item))
        if res is None or not self._warc_unchanged(item["warc_file"]):
            return None
        return res


def load_previous(
    root: Path, stage: str, part: str, config_fp: str, version: int
) -> Previous | None:
    """The earlier complete result of the part, or None (with the reason logged) when there
    is none or it cannot be trusted: then the caller extracts the part in full."""
    root = Path(root)

    def unusable(why: str) -> Previous | None:
        log.warning(
            "%s/%s: earlier extraction not reusable (%s); extracting the part in full",
            stage,
            part,
            why,
        )
        return None

    earlier, why = earlier_run(root, stage, part, config_fp, version)
    if earlier is None:
        return None if why == "no earlier run" else unusable(why)
    docs_p = root / "docs" / f"{part}.parquet"
    ledger_p = root / "ledger" / stage / f"{part}.parquet"
    index_p = index_path(root, part)
    for p in (docs_p, ledger_p, index_p):
        rel = str(p.relative_to(root))
        if rel not in earlier.outputs:
            return unusable(f"{rel} is not an output of the earlier run")
    changed = earlier.changed_outputs()
    if changed:
        return unusable(f"{changed[0]} is missing or changed since the earlier run")
    try:
        docs = read_table(docs_p)
        ledger = read_table(ledger_p)
        index = read_table(index_p)
        if docs.schema.names != DOCS_SCHEMA.names:
            return unusable("docs part has other columns")
        docs = docs.cast(DOCS_SCHEMA)
        if ledger.schema.names != LEDGER_SCHEMA.names:
            return unusable("ledger part has other columns")
        if index.schema.names != INDEX_SCHEMA.names:
            return unusable("index has other columns")
        index = index.cast(INDEX_SCHEMA)
    except Exception as err:  # noqa: BLE001 (any unreadable file means: extract in full)
        return unusable(f"earlier output unreadable: {type(err).__name__}: {err}")
    doc_rows = {r["url"]: r for r in docs.select(["url", *PAGE_FIELDS]).to_pylist()}
    drops: dict[str, tuple[str, str | None]] = {}
    for d in ledger.to_pylist():
        if d["reason"] in PAGE_REASONS:
            drops[d["key"]] = (d["reason"], d["detail"])
    outcomes: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in index.to_pylist():
        url = r["url"]
        doc = doc_rows.get(url)
        if doc is not None:
            outcomes[page_key(r)] = {"doc": {k: doc[k] for k in PAGE_FIELDS}}
        elif url in drops and drops[url][0] not in RETRY_REASONS:
            outcomes[page_key(r)] = {"drop": drops[url]}
    return Previous(earlier=earlier, outcomes=outcomes)
