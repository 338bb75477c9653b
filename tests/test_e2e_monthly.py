"""A scheduled build's second month, end to end: the new dump is added to the inputs folder,
the build fetches only the new URLs, and the result equals a from-scratch build of both months."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.core.stage import read_stats

pytestmark = pytest.mark.slow
JULY_2017 = 1499040000  # 2017-07-03T00:00:00Z


def _month_two(web, other) -> tuple[list[str], list[str], list[dict]]:
    """Four articles of another seed's web, served on the same sites, plus reposts with more
    karma of two month-one articles."""
    new_urls = []
    for url in other.links["regular"]:
        host, path = urlsplit(url).hostname, urlsplit(url).path
        if host in web.pages and path not in web.pages[host] and len(new_urls) < 4:
            web.pages[host][path] = other.pages[host][path]
            new_urls.append(url)
    reposts = web.links["regular"][:2]
    posts = []
    for i, url in enumerate(new_urls + reposts):
        posts.append(
            {
                "id": f"jul{i:03d}",
                "created_utc": JULY_2017 + 3600 * i,
                "score": 5000 + i,
                "subreddit": "julynews",
                "url": url,
                "domain": urlsplit(url).hostname,
                "is_self": False,
                "over_18": False,
                "title": f"July story {i}",
            }
        )
    return new_urls, reposts, posts


def _build(out: Path, web, proxy_url: str) -> dict:
    import demo as demo_web
    from pipeline.cli import run_build

    cfg = demo_web.demo_config(out, web, proxy_url)
    cfg["crawl"].pop("proxy")
    cfg["harvest"]["inputs"] = [str(out / "input")]
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    return run_build(out / "config.yaml", {"crawl.proxy": proxy_url})


def _shards(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "shards").iterdir())}


def test_second_month_fetches_only_new_links(prefect_harness, tmp_path: Path) -> None:
    import demo as demo_web

    out = tmp_path / "monthly"
    web = demo_web.generate(out)
    other = demo_web.generate(tmp_path / "other", seed=7)
    with demo_web.serve(web) as proxy_url:
        first = _build(out, web, proxy_url)
    assert first["funnel"]["shards"]["out"] == web.expected["shards"]
    markers = {
        stage: {p.name: p.read_bytes() for p in (out / "_done" / stage).glob("*.json")}
        for stage in ("crawl", "extract")
    }

    new_urls, reposts, posts = _month_two(web, other)
    assert len(new_urls) == 4
    july = out / "input" / "RS_demo-2017-07.ndjson"
    july.write_text("".join(json.dumps(p) + "\n" for p in posts))
    with demo_web.serve(web) as proxy_url:
        second = _build(out, web, proxy_url)
        fresh = tmp_path / "fresh"
        demo_web.generate(fresh)
        (fresh / "input" / july.name).write_bytes(july.read_bytes())
        scratch = _build(fresh, web, proxy_url)

    funnel = second["funnel"]
    assert funnel["harvest"]["in"] == first["funnel"]["harvest"]["in"] + len(posts)
    assert funnel["harvest"]["dropped"]["merged_duplicate"] == (
        first["funnel"]["harvest"]["dropped"]["merged_duplicate"] + len(reposts)
    )
    assert funnel["shards"]["out"] == web.expected["shards"] + len(new_urls)

    # Only the new URLs went to the web; every earlier fetch row was carried over.
    def rerun(stage: str) -> list:
        return [
            s
            for s in read_stats(out, stage)
            if (out / "_done" / stage / f"{s.part}.json").read_bytes()
            != markers[stage][f"{s.part}.json"]
        ]

    assert rerun("crawl"), "the new links must change at least one crawl part"
    assert sum(s.extra.get("crawled_now", s.n_in) for s in rerun("crawl")) == len(new_urls)
    # ... and only their pages went through trafilatura; the rest reused earlier outcomes.
    assert sum(s.extra.get("extracted", s.n_in) for s in rerun("extract")) == len(new_urls)
    # The reposts' karma is the new maximum.
    karma = {}
    for path in (out / "shards").glob("*.parquet"):
        for row in pq.read_table(path, columns=["url", "karma"]).to_pylist():
            karma[row["url"]] = row["karma"]
    assert [karma[u] for u in reposts] == [5004, 5005]
    # Incremental equals from scratch.
    assert funnel == scratch["funnel"]
    assert _shards(out) == _shards(fresh)
