"""Builders of crawl outputs (WARC + fetches part + links part) for the extract tests, written
with warcio the way the crawler records responses: one gzip member per record, its offset and
length in the fetch row."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.core.io import rows_to_table, write_table
from schemas.records import FETCH_SCHEMA, LINKS_SCHEMA, FetchRecord, LinkRecord

T0 = datetime(2017, 6, 1, tzinfo=UTC)


@dataclass
class Page:
    url: str
    body: bytes = b""
    content_type: str | None = "text/html; charset=utf-8"
    status: int = 200
    error: str | None = None  # a crawl error: no WARC record
    final_url: str | None = None
    in_links: bool = True
    karma: int = 5


def article_html(title: str, paragraphs: list[str], charset: str | None = "utf-8") -> str:
    meta = f'<meta charset="{charset}">' if charset else ""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<html><head>{meta}<title>{title}</title></head><body>"
        f"<nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        f"<footer>Copyright 2017 Example Media</footer></body></html>"
    )


ENGLISH_PARAS = [
    (
        "The city council voted on Tuesday to approve a new plan for the river front, ending "
        "a debate that had lasted for more than three years and divided the neighbourhoods "
        "along the water."
    ),
    (
        "Supporters of the plan said that the new park and the housing that comes with it "
        "would bring families back to an area that has been losing people since the factories "
        "closed in the nineteen eighties."
    ),
    (
        "Opponents argued that the cost to the city had been underestimated, and that the "
        "money would be better spent on schools, roads and the bus network that many residents "
        "depend on every day."
    ),
    (
        "The mayor, who had made the project a central promise of her campaign, told reporters "
        "after the vote that work would begin in the spring and that the first homes should be "
        "ready within two years."
    ),
    (
        "Several members of the council asked for regular reports on the budget, and the "
        "planning department agreed to publish the figures every three months on the city's "
        "web site so that residents can follow the progress."
    ),
]


def write_crawl(root: Path, pages: list[Page], part: str = "part-00000") -> tuple[Path, Path]:
    """WARC at root/crawl/warc/<part>.warc.gz, fetches and links parts; returns (links, fetches)."""
    warc_rel = f"crawl/warc/{part}.warc.gz"
    warc_path = root / warc_rel
    warc_path.parent.mkdir(parents=True, exist_ok=True)
    fetches: list[FetchRecord] = []
    with open(warc_path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for p in pages:
            if p.error is not None:
                fetches.append(FetchRecord(p.url, None, None, None, 0, T0, 10, p.error))
                continue
            headers = [("Content-Length", str(len(p.body)))]
            if p.content_type:
                headers.insert(0, ("Content-Type", p.content_type))
            http = StatusAndHeaders(f"{p.status} OK", headers, protocol="HTTP/1.1")
            final = p.final_url or p.url
            rec = writer.create_warc_record(
                final, "response", payload=io.BytesIO(p.body), http_headers=http
            )
            start = f.tell()
            writer.write_record(rec)
            fetches.append(
                FetchRecord(
                    url=p.url,
                    final_url=final,
                    status=p.status,
                    content_type=p.content_type,
                    bytes=len(p.body),
                    fetched_at=T0,
                    elapsed_ms=10,
                    error=None,
                    warc_file=warc_rel,
                    warc_offset=start,
                    warc_length=f.tell() - start,
                )
            )
    links = [
        LinkRecord(
            url=p.url,
            domain=_domain(p.url),
            host=_host(p.url),
            karma=p.karma,
            karma_max=p.karma,
            karma_sum=p.karma,
            n_posts=1,
            post_ids=["abc"],
            subreddits=["news"],
            first_seen=T0,
            title=f"reddit title {i}",
        )
        for i, p in enumerate(pages)
        if p.in_links
    ]
    links_part = root / "links" / f"{part}.parquet"
    fetches_part = root / "crawl" / "fetches" / f"{part}.parquet"
    write_table(links_part, rows_to_table(links, LINKS_SCHEMA))
    write_table(fetches_part, rows_to_table(fetches, FETCH_SCHEMA))
    return links_part, fetches_part


def _host(url: str) -> str:
    return url.split("/")[2].lower()


def _domain(url: str) -> str:
    return ".".join(_host(url).split(".")[-2:])
