"""Arctic Shift: its monthly dumps harvest like Pushshift's; its API client (paging, rate limits,
errors, resume) against a local fake server; a month fetched through the API harvests to the
same links as the same posts given as a dump file."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import zstandard

from pipeline import harvest
from pipeline.core.config import HarvestConfig
from tests.arctic_server import MONTH_START, arctic_post, dump_line

T = MONTH_START + 86400  # 2026-10-02


def _cfg(**kw: object) -> HarvestConfig:
    return HarvestConfig(end_date=None, n_parts=1, **kw)  # type: ignore[arg-type]


def _write_zst(path: Path, lines: list[bytes], frames: int = 3) -> Path:
    """Several frames with the 2 GiB window flag of `zstd --long=31`, as Arctic Shift's files."""
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
