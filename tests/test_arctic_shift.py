"""Arctic Shift: its monthly dumps harvest like Pushshift's; its API client (paging, rate limits,
errors, resume) against a local fake server; a month fetched through the API harvests to the
same links as the same posts given as a dump file."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard

from pipeline import harvest
from pipeline.core.config import ArcticShiftConfig, HarvestConfig
from pipeline.harvest.arctic_shift import (
    MonthResult,
    fetch_configured,
    seconds_until,
    settled_months,
)
from pipeline.harvest.dumps import DumpReader
from tests.arctic_server import (
    MONTH,
    MONTH_START,
    FakeArcticShift,
    Script,
    arctic_post,
    dump_line,
    generated_month,
    serve,
)

T = MONTH_START + 86400  # 2026-10-02
NOW = datetime(2026, 11, 30, tzinfo=UTC).timestamp()


def _cfg(**kw: object) -> HarvestConfig:
    return HarvestConfig(end_date=None, n_parts=1, **kw)  # type: ignore[arg-type]


def _write_zst(path: Path, lines: list[bytes], frames: int = 3) -> Path:
    """Several frames with the 2 GiB window flag of `zstd --long=31`, as Arctic Shift's files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(line + b"\n" for line in lines)
    params = zstandard.ZstdCompressionParameters.from_level(10, window_log=31)
    cctx = zstandard.ZstdCompressor(compression_params=params)
    step = -(-len(data) // frames)
    path.write_bytes(b"".join(cctx.compress(data[i : i + step]) for i in range(0, len(data), step)))
    return path


# One post per case: (post, expected outcome: a normalized URL kept, or the drop reason).
SCHEMA_CASES = [
    (
        arctic_post("1a0001", T, "news", "https://www.Example-News.com/a?utm_source=rd&id=3#c", 57),
        "https://www.example-news.com/a?id=3",
    ),
    # created_utc as a float, as the Reddit API (and Arctic Shift's 2023-04..10 files) give it.
    (arctic_post("1a0002", T + 1.0, "news", "https://example.org/b", 12), "https://example.org/b"),
    (arctic_post("1a0003", T + 2, "news", "https://example.org/low", 2), "low_karma"),
    (
        arctic_post(
            "1a0004",
            T + 3,
            "AskReddit",
            "https://www.reddit.com/r/AskReddit/comments/1a0004/a_title/",
            900,
            is_self=True,
            domain="self.AskReddit",
            selftext="question",
        ),
        "self_post",
    ),
    # Reddit's own media hosts are Reddit links (checked before the blocked domains).
    (arctic_post("1a0005", T + 4, "pics", "https://i.redd.it/abc.jpeg", 80), "reddit_link"),
    (arctic_post("1a0015", T + 14, "videos", "https://youtu.be/xyz", 80), "blocked_domain"),
    (
        arctic_post(
            "1a0006",
            T + 5,
            "pics",
            "https://www.reddit.com/gallery/1a0006",
            40,
            is_gallery=True,
            gallery_data={"items": [{"id": 1, "media_id": "m1"}]},
        ),
        "reddit_link",
    ),
    # A crosspost: its own URL is the parent's permalink, the outbound link is the parent's.
    (
        arctic_post(
            "1a0007",
            T + 6,
            "worldnews",
            "/r/news/comments/1a0001/a_title/",
            31,
            domain="blog.example.net",
            crosspost_parent="t3_1a0001",
            crosspost_parent_list=[
                {"id": "1a0001", "is_self": False, "url": "https://blog.example.net/post/"}
            ],
        ),
        "https://blog.example.net/post/",
    ),
    (
        arctic_post(
            "1a0008", T + 7, "news", "https://example.org/mod", 99, removed_by_category="moderator"
        ),
        "removed",
    ),
    # Removed after the first retrieval: only `_meta` says so (2023-11+ files).
    (
        arctic_post(
            "1a0009",
            T + 8,
            "news",
            "https://example.org/later",
            99,
            _meta={
                "removal_type": "moderator",
                "retrieved_2nd_on": T + 9,
                "was_deleted_later": True,
            },
        ),
        "removed",
    ),
    # Edited later, still there: `_meta` does not make it a removal.
    (
        arctic_post(
            "1a0010",
            T + 9,
            "news",
            "https://example.org/edited",
            5,
            _meta={"edited_title": "New", "is_edited": True, "retrieved_2nd_on": T + 10},
        ),
        "https://example.org/edited",
    ),
    (arctic_post("1a0011", T + 10, "news", "https://example.org/nsfw", 50, over_18=True), "nsfw"),
    # The fields a `fields=` API query returns: no is_self, domain, permalink, over_18, _meta.
    (
        {
            "created_utc": T + 11,
            "id": "1a0012",
            "score": 8,
            "subreddit": "technology",
            "title": "t",
            "url": "https://tech.example.com/x",
        },
        "https://tech.example.com/x",
    ),
    (
        arctic_post(
            "1a0013",
            T + 12,
            "news",
            "https://redirect.example.com/r",
            9,
            url_overridden_by_dest="https://dest.example.com/story",
        ),
        "https://dest.example.com/story",
    ),
    # The same link in two subreddits: one links row, karma of the best post (per_post).
    (
        arctic_post("1a0014", T + 13, "technology", "https://example.org/b", 40),
        "https://example.org/b",
    ),
]


def test_arctic_shift_dump_schema_harvests_to_the_expected_links(tmp_path: Path) -> None:
    dump = _write_zst(tmp_path / "RS_2026-10.zst", [dump_line(p) for p, _ in SCHEMA_CASES])
    root = tmp_path / "out"
    stats = harvest.run([str(dump)], root, _cfg())
    assert sum(s.n_in for s in stats) == len(SCHEMA_CASES)

    ledger = pq.read_table(next((root / "ledger" / "harvest").glob("file-*.parquet"))).to_pylist()
    got_drops = {row["key"]: row["reason"] for row in ledger}
    want_drops = {p["id"]: want for p, want in SCHEMA_CASES if "://" not in want}
    assert got_drops == want_drops
    assert {row["key"]: row["detail"] for row in ledger}["1a0009"] == "later: moderator"

    links = pq.read_table(root / "links" / "part-00000.parquet").to_pylist()
    want_urls = sorted({want for _, want in SCHEMA_CASES if "://" in want})
    assert [r["url"] for r in links] == want_urls
    by_url = {r["url"]: r for r in links}
    assert by_url["https://example.org/b"]["karma"] == 40
    assert by_url["https://example.org/b"]["post_ids"] == ["1a0002", "1a0014"]
    assert by_url["https://example.org/b"]["subreddits"] == ["news", "technology"]
    assert by_url["https://blog.example.net/post/"]["post_ids"] == ["1a0007"]
    first = by_url["https://www.example-news.com/a?id=3"]
    assert (first["karma"], first["title"], first["subreddits"]) == (57, "A title", ["news"])
    assert int(first["first_seen"].timestamp()) == T
    n_kept = sum(1 for _, want in SCHEMA_CASES if "://" in want)
    assert (
        sum(s.n_out for s in stats)
        + sum(n for s in stats for r, n in s.dropped.items() if r == "merged_duplicate")
        == n_kept
    )


# ---------------------------------------------------------------------------------------------
# The API client against a local fake Arctic Shift


def _api_cfg(base_url: str, subs: list[str], **kw: object) -> HarvestConfig:
    arctic = {
        "subreddits": subs,
        "months": [MONTH],
        "base_url": base_url,
        "requests_per_second": 200.0,
        "page_size": 10,
        "backoff_s": 0.05,
        "max_retries": 3,
        **kw,
    }
    return HarvestConfig(end_date=None, n_parts=2, arctic_shift=arctic)  # type: ignore[arg-type]


def _expected_dump_lines(posts: dict[str, list[dict]]) -> list[bytes]:
    """What the fetched dump must hold: every post once, subreddit blocks in name order, each
    sorted by (created_utc, id), keys sorted."""
    return [
        dump_line(p)
        for sub in sorted(s.lower() for s in posts)
        for p in sorted(
            next(v for k, v in posts.items() if k.lower() == sub),
            key=lambda p: (int(p["created_utc"]), p["id"]),
        )
    ]


def _lines(path: Path) -> list[bytes]:
    return [line for line in DumpReader(path)]


def _fetch(cfg: HarvestConfig, out: Path) -> MonthResult:
    results = fetch_configured(cfg, out, now=NOW)
    assert len(results) == 1
    return results[0]


@pytest.mark.parametrize(("inclusive", "ids_descending"), [(False, False), (True, True)])
def test_paging_by_created_utc_with_ties_at_page_boundaries(
    tmp_path: Path, inclusive: bool, ids_descending: bool
):
    posts = generated_month({"news": 95, "Technology": 31}, ties=5)
    script = Script(inclusive=inclusive, ids_descending=ids_descending)
    with serve(FakeArcticShift(posts, script)) as fake:
        result = _fetch(_api_cfg(fake.base_url, ["news", "technology"]), tmp_path)
    assert result.status == "fetched"
    assert result.posts == 95 + 31
    dump = tmp_path / "arctic-shift" / "dumps" / "RS_2026-10.zst"
    assert result.path == str(dump)
    assert _lines(dump) == _expected_dump_lines(posts)
    # Pages overlap by one second; at least one boundary fell inside a group of 5 posts
    # sharing a second (posts 35-39 of r/news: the 4th page ends at post 36).
    news = sorted(posts["news"], key=lambda p: (p["created_utc"], p["id"]))
    tie_second = news[35]["created_utc"]
    assert news[39]["created_utc"] == tie_second and news[34]["created_utc"] != tie_second
    afters = [int(r.params["after"]) for r in fake.records if r.params["subreddit"] == "news"]
    assert tie_second - 1 in afters
    # One request per page; each page but the last is full: 10 new posts at most per page.
    assert result.pages == len(fake.records) == result.requests
    assert not (tmp_path / "arctic-shift" / "work" / "RS_2026-10").exists()


def test_more_posts_in_one_second_than_a_page_is_an_error_not_a_loss(tmp_path: Path):
    posts = {
        "news": [
            arctic_post(f"t{i:02d}", MONTH_START + 60, "news", f"https://a.example/{i}")
            for i in range(12)
        ]
    }
    with serve(FakeArcticShift(posts)) as fake:
        result = _fetch(_api_cfg(fake.base_url, ["news"]), tmp_path)
    assert result.status == "failed"
    assert result.error is not None and "more than 10 posts of r/news" in result.error
    assert not (tmp_path / "arctic-shift" / "dumps" / "RS_2026-10.zst").exists()


def test_rate_limit_headers_are_obeyed(tmp_path: Path):
    posts = generated_month({"news": 75}, ties=1)
    script = Script(rate_limit=3, window_s=1.0)
    with serve(FakeArcticShift(posts, script)) as fake:
        result = _fetch(_api_cfg(fake.base_url, ["news"]), tmp_path)
    assert result.status == "fetched" and result.posts == 75
    statuses = [r.status for r in fake.records]
    # 75 posts, pages of 10 overlapping by one second (one post): 10 + 8 x 9 + 2 > 75, 9 pages
    assert statuses == [200] * 9  # never a 429
    windows = Counter(int((r.at - fake.t0) // script.window_s) for r in fake.records)
    assert max(windows.values()) <= 3  # never more than the server announced
    # Whenever the server said "0 left", the next request came after the announced reset,
    # although the client's own pace (200/s) would have sent it at once.
    exhausted = [(r, nxt) for r, nxt in zip(fake.records, fake.records[1:]) if r.remaining == 0]
    assert exhausted
    assert all(nxt.at >= r.at + r.reset - 0.005 for r, nxt in exhausted)
    assert 1 <= len(result.waits) <= len(exhausted)


def test_429_and_503_with_retry_after_then_success(tmp_path: Path):
    posts = generated_month({"news": 25}, ties=1)
    script = Script(
        before=[(429, {"Retry-After": "0.4"}), (503, {"Retry-After": "0.3"}), (503, {})]
    )
    with serve(FakeArcticShift(posts, script)) as fake:
        result = _fetch(_api_cfg(fake.base_url, ["news"]), tmp_path)
    assert result.status == "fetched" and result.posts == 25
    assert [r.status for r in fake.records] == [429, 503, 503, 200, 200, 200]
    gaps = [b.at - a.at for a, b in zip(fake.records, fake.records[1:])]
    assert gaps[0] >= 0.4 - 0.01  # Retry-After of the 429
    assert gaps[1] >= 0.3 - 0.01  # Retry-After of the 503
    assert gaps[2] >= 0.05 * 2**2 - 0.01  # no Retry-After: backoff of the third attempt
    assert result.retries == 3
    assert _lines(Path(result.path or "")) == _expected_dump_lines(posts)


def test_persistent_failure_is_a_clear_error(tmp_path: Path):
    posts = generated_month({"news": 25}, ties=1)
    with serve(FakeArcticShift(posts, Script(always=503))) as fake:
        result = _fetch(_api_cfg(fake.base_url, ["news"], max_retries=2), tmp_path)
        assert len(fake.records) == 3  # the first try and 2 retries
    assert result.status == "failed"
    assert result.error is not None
    assert "still failing after 2 retries (last: HTTP 503)" in result.error
    assert not (tmp_path / "arctic-shift" / "dumps" / "RS_2026-10.zst").exists()
    # A refusal (4xx) is not retried.
    with serve(FakeArcticShift(posts, Script(always=400))) as fake:
        result = _fetch(_api_cfg(fake.base_url, ["news"]), tmp_path)
        assert len(fake.records) == 1
    assert result.status == "failed" and "refused" in (result.error or "")
    assert "HTTP 400" in (result.error or "")


def test_cli_reports_a_failed_month_with_exit_code_1(tmp_path: Path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    posts = generated_month({"news": 5}, ties=1)
    with serve(FakeArcticShift(posts, Script(always=503))) as fake:
        config = tmp_path / "c.yaml"
        config.write_text(
            "out_dir: out\nharvest:\n  arctic_shift:\n"
            f"    subreddits: [news]\n    base_url: {fake.base_url}\n"
            "    requests_per_second: 100\n    max_retries: 1\n    backoff_s: 0.01\n"
        )
        res = CliRunner().invoke(app, ["arctic-fetch", "--config", str(config), "--month", MONTH])
    assert res.exit_code == 1
    assert "still failing after 1 retries (last: HTTP 503)" in res.output
    res = CliRunner().invoke(app, ["arctic-fetch", "--config", str(config), "--month", "2026-13"])
    assert res.exit_code == 2


def test_resume_fetches_only_the_rest_and_gives_the_same_bytes(tmp_path: Path):
    posts = generated_month({"news": 45, "technology": 33}, ties=5)
    with serve(FakeArcticShift(posts)) as fake:
        clean = _fetch(_api_cfg(fake.base_url, ["news", "technology"]), tmp_path / "clean")
        pages = [r.params for r in fake.records]
    assert clean.status == "fetched" and not clean.resumed

    cut = tmp_path / "cut"
    script = Script(fail_after=4)  # the 5th page and every later request: HTTP 500
    with serve(FakeArcticShift(posts, script)) as fake:
        cfg = _api_cfg(fake.base_url, ["news", "technology"], max_retries=1)
        broken = _fetch(cfg, cut)
        assert broken.status == "failed"
        dump = cut / "arctic-shift" / "dumps" / "RS_2026-10.zst"
        assert not dump.exists()  # a partial fetch never looks like a month
        # A kill in the middle of a write leaves a torn line: it must be cut, not kept.
        with open(cut / "arctic-shift" / "work" / "RS_2026-10" / "news.ndjson.part", "ab") as f:
            f.write(b'{"id":"torn","created_utc":17908')
        fake.records.clear()
        script.fail_after = None
        resumed = _fetch(cfg, cut)
        again = [r.params for r in fake.records]
    assert resumed.status == "fetched" and resumed.resumed
    assert again == pages[4:]  # exactly the pages the first attempt did not get
    assert dump.read_bytes() == Path(clean.path or "").read_bytes()
    # Fetched once: a later run finds the file and asks nothing.
    with serve(FakeArcticShift(posts)) as fake:
        assert _fetch(cfg, cut).status == "cached"
        assert fake.records == []


def test_months_settle_and_months_with_a_dump_are_not_fetched(tmp_path: Path):
    acfg = ArcticShiftConfig(subreddits=["news"])
    nov2 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()  # October ended 24 h ago
    assert settled_months(acfg, nov2) == ["2026-08", "2026-09"]
    assert settled_months(acfg, nov2 + 2 * 86400) == ["2026-09", "2026-10"]
    inputs = tmp_path / "dumps"
    inputs.mkdir()
    (inputs / "RS_2026-09.zst").write_bytes(b"")
    posts = generated_month({"news": 5}, ties=1)
    with serve(FakeArcticShift(posts)) as fake:
        cfg = HarvestConfig(
            inputs=[str(inputs)],
            arctic_shift={"subreddits": ["news"], "base_url": fake.base_url},  # type: ignore[arg-type]
        )
        results = fetch_configured(cfg, tmp_path / "out", now=nov2 + 2 * 86400)
        by_month = {r.month: r for r in results}
        assert by_month["2026-09"].status == "has_dump"
        assert by_month["2026-10"].status == "fetched"
        # The first folder of harvest.inputs receives the fetched month.
        assert by_month["2026-10"].path == str(inputs / "RS_2026-10.zst")
        assert len(fake.records) == 1
        early = fetch_configured(cfg, tmp_path / "out2", months=["2026-11"], now=nov2)
    assert early[0].status == "unsettled"


def test_a_month_fetched_through_the_api_harvests_like_the_same_posts_as_a_dump(tmp_path: Path):
    posts = generated_month({"news": 120, "technology": 60, "worldnews": 33}, ties=5)
    for post, _ in SCHEMA_CASES:  # the schema cases too, in their own subreddits
        posts.setdefault(post["subreddit"], []).append(post)
    # A title with half an emoji (a lone surrogate escape in the JSON).
    posts["news"].append(
        arctic_post("1b0001", T + 99, "news", "https://e.example/s", 9, "\ud83d x")
    )
    with serve(FakeArcticShift(posts)) as fake:
        cfg = _api_cfg(fake.base_url, sorted(posts))
        fetched = _fetch(cfg, tmp_path / "api")
    assert fetched.posts == sum(len(v) for v in posts.values())

    # The same posts as Arctic Shift's own monthly file: all of them by (created_utc, id).
    everything = sorted(
        (p for ps in posts.values() for p in ps), key=lambda p: (int(p["created_utc"]), p["id"])
    )
    dump = _write_zst(tmp_path / "dump" / "RS_2026-10.zst", [dump_line(p) for p in everything])
    via_api = harvest.run([fetched.path or ""], tmp_path / "h-api", cfg)
    via_dump = harvest.run([str(dump)], tmp_path / "h-dump", cfg)
    assert [s.to_json()["dropped"] for s in via_api] == [s.to_json()["dropped"] for s in via_dump]
    assert [(s.n_in, s.n_out) for s in via_api] == [(s.n_in, s.n_out) for s in via_dump]
    assert sum(s.n_out for s in via_api) > 100
    for i in range(cfg.n_parts):
        name = f"links/part-{i:05d}.parquet"
        assert (tmp_path / "h-api" / name).read_bytes() == (tmp_path / "h-dump" / name).read_bytes()


@pytest.mark.slow
def test_flow_task_reports_a_failed_month_and_harvests_a_fetched_one(prefect_harness, tmp_path):
    from prefect import flow

    from flows.arctic_shift import fetch_arctic_months
    from pipeline.core.config import CorpusConfig

    posts = generated_month({"news": 40}, ties=5)

    @flow
    def fetch_then_harvest(cfg_data: dict) -> tuple[list[str], list[str], int]:
        paths, failures = fetch_arctic_months(cfg_data)
        cfg = CorpusConfig.model_validate(cfg_data)
        stats = harvest.run(paths, tmp_path / "out", cfg.harvest) if paths else []
        return paths, failures, sum(s.n_out for s in stats)

    def cfg_data(base_url: str) -> dict:
        cfg = CorpusConfig(out_dir=str(tmp_path / "out"), harvest=_api_cfg(base_url, ["news"]))
        cfg.harvest.arctic_shift.max_retries = 1
        return cfg.model_dump(mode="json")

    with serve(FakeArcticShift(posts, Script(always=503))) as fake:
        paths, failures, _ = fetch_then_harvest(cfg_data(fake.base_url))
    assert paths == []
    assert len(failures) == 1 and failures[0].startswith("arctic-shift/2026-10: ")
    assert "HTTP 503" in failures[0]
    with serve(FakeArcticShift(posts)) as fake:
        paths, failures, links = fetch_then_harvest(cfg_data(fake.base_url))
    assert failures == []
    assert paths == [str(tmp_path / "out" / "arctic-shift" / "dumps" / "RS_2026-10.zst")]
    # generated_month: 40 posts with scores serial % 9 (1..40): below 3 are 0, 1, 2
    assert links == sum(1 for p in posts["news"] if p["score"] >= 3)


def test_a_killed_fetch_resumes_to_the_same_bytes(tmp_path: Path):
    import signal
    import subprocess
    import sys
    import time

    from pipeline.core.config import load_config

    posts = generated_month({"news": 60, "technology": 40}, ties=5)
    with serve(FakeArcticShift(posts)) as fake:
        clean = _fetch(_api_cfg(fake.base_url, ["news", "technology"]), tmp_path / "clean")
        n_pages = len(fake.records)

    script = Script(delay_s=0.1)
    with serve(FakeArcticShift(posts, script)) as fake:
        config = tmp_path / "c.yaml"
        config.write_text(
            "out_dir: out\nharvest:\n  end_date: null\n  arctic_shift:\n"
            f"    subreddits: [news, technology]\n    base_url: {fake.base_url}\n"
            f"    months: ['{MONTH}']\n    requests_per_second: 100\n    page_size: 10\n"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", "from pipeline.cli import app; app()"]
            + ["arctic-fetch", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while fake.pages < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        served = fake.pages
        assert 4 <= served < n_pages
        dump = tmp_path / "out" / "arctic-shift" / "dumps" / "RS_2026-10.zst"
        assert not dump.exists()
        script.delay_s = 0.0
        fake.records.clear()
        cfg = load_config(config)
        resumed = fetch_configured(cfg.harvest, Path(cfg.out_dir), now=NOW)[0]
    assert resumed.status == "fetched" and resumed.resumed
    # The page in flight at the kill may be asked again; nothing before it.
    assert n_pages - served <= len(fake.records) <= n_pages - served + 1
    assert dump.read_bytes() == Path(clean.path or "").read_bytes()


@pytest.mark.slow
def test_build_with_an_arctic_shift_month(prefect_harness, tmp_path: Path):
    """The demo build with harvest.arctic_shift on: a month the API cannot serve fails the
    build at the end (exit 1) after every other part is built; once it can, the next build
    fetches the month into the inputs folder and its new links reach the shards."""
    import typer
    import yaml

    import demo as demo_web
    from pipeline.cli import run_build
    from tests.test_e2e_monthly import _month_two

    out = tmp_path / "build"
    web = demo_web.generate(out)
    other = demo_web.generate(tmp_path / "other", seed=7)
    new_urls, reposts, _ = _month_two(web, other)
    assert len(new_urls) == 4
    posts = {
        "julynews": [
            arctic_post(f"oct{i:03d}", T + 3600 * i, "julynews", url, score=5000 + i)
            for i, url in enumerate(new_urls + reposts)
        ]
    }
    script = Script(always=503)
    with serve(FakeArcticShift(posts, script)) as fake, demo_web.serve(web) as proxy_url:
        cfg = demo_web.demo_config(out, web, proxy_url)
        cfg["crawl"].pop("proxy")
        inputs = out / "input"
        cfg["harvest"].update(
            inputs=[str(inputs)],
            end_date=None,
            arctic_shift={
                "subreddits": ["julynews"],
                "months": [MONTH],
                "base_url": fake.base_url,
                "max_retries": 1,
                "backoff_s": 0.01,
            },
        )
        (out / "config.yaml").write_text(yaml.safe_dump(cfg))
        with pytest.raises(typer.Exit) as failed:
            run_build(out / "config.yaml", {"crawl.proxy": proxy_url})
        assert failed.value.exit_code == 1
        funnel = json.loads((out / "funnel.json").read_text())
        assert funnel["shards"]["out"] == web.expected["shards"]
        assert not (inputs / "RS_2026-10.zst").exists()

        script.always = None
        second = run_build(out / "config.yaml", {"crawl.proxy": proxy_url})
    assert (inputs / "RS_2026-10.zst").is_file()
    assert second["failures"] == []
    assert second["funnel"]["harvest"]["in"] == funnel["harvest"]["in"] + len(new_urls + reposts)
    assert second["funnel"]["shards"]["out"] == web.expected["shards"] + len(new_urls)
    karma = {}
    for path in (out / "shards").glob("*.parquet"):
        for row in pq.read_table(path, columns=["url", "karma"]).to_pylist():
            karma[row["url"]] = row["karma"]
    assert [karma[u] for u in reposts] == [5004, 5005]


def test_wait_headers_in_seconds_epoch_or_http_date():
    import email.utils
    import time

    assert seconds_until("2.5") == 2.5
    assert seconds_until(None) is None and seconds_until("soon") is None
    assert seconds_until("nan") is None
    epoch = time.time() + 30
    assert 29 <= (seconds_until(f"{epoch:.0f}") or 0) <= 31
    assert 29 <= (seconds_until(f"{epoch * 1000:.0f}") or 0) <= 31
    assert 29 <= (seconds_until(email.utils.formatdate(epoch, usegmt=True)) or 0) <= 31
