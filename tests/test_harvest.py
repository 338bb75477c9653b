"""Harvest stage end to end: real Pushshift dumps, every schema era, reruns, new months."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard

from pipeline import harvest
from pipeline.core.config import HarvestConfig
from pipeline.core.ledger import STAGES
from pipeline.core.stage import write_funnel
from pipeline.harvest import files as harvest_files

MEDIA_EXT = (".jpg", ".jpeg", ".png", ".gif", ".pdf")


def _links(root: Path) -> list[dict]:
    rows = []
    for p in sorted((root / "links").glob("part-*.parquet")):
        rows.extend(pq.read_table(p).to_pylist())
    return rows


def _ledger(root: Path) -> list[dict]:
    rows = []
    for p in sorted((root / "ledger" / "harvest").glob("*.parquet")):
        rows.extend(pq.read_table(p).to_pylist())
    return rows


def _tree_digest(root: Path, sub: str) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / sub).rglob("*"))
        if p.is_file()
    }


def _read_real(path: Path) -> list[dict]:
    """Independent reader: the stdlib / zstandard's own stream reader, json.loads."""
    if path.suffix == ".xz":
        data = lzma.decompress(path.read_bytes())
    else:
        with open(path, "rb") as f:
            data = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(f).read()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def _expected_real(posts: list[dict]) -> dict:
    """The WebText rules written out naively for these 2005 posts (all link posts, in window,
    no NSFW, no media hosts; a few media file extensions)."""
    assert not any(p["is_self"] or p["over_18"] for p in posts)
    low = [p for p in posts if p["score"] < 3]
    kept = [p for p in posts if p["score"] >= 3]
    media = [p for p in kept if p["url"].lower().endswith(MEDIA_EXT)]
    text = [p for p in kept if not p["url"].lower().endswith(MEDIA_EXT)]
    distinct = {p["url"].lower().rstrip("/") for p in text}
    return {
        "in": len(posts),
        "low_karma": len(low),
        "blocked_extension": len(media),
        "out": len(distinct),
        "merged_duplicate": len(text) - len(distinct),
    }


@pytest.mark.parametrize("suffix", [".xz", ".zst"])
def test_real_pushshift_dumps_exact_counts(shared_data: Path, tmp_path: Path, suffix: str) -> None:
    files = [shared_data / "reddit" / f"RS_v2_2005-0{m}{suffix}" for m in (6, 7)]
    posts = [p for f in files for p in _read_real(f)]
    expect = _expected_real(posts)
    # The figures, also written down, so a change in the independent count is noticed too.
    assert expect == {
        "in": 1182,
        "low_karma": 342,
        "blocked_extension": 3,
        "out": 836,
        "merged_duplicate": 1,
    }
    cfg = HarvestConfig(n_parts=4)
    stats = harvest.run([str(f) for f in files], tmp_path, cfg)
    total = harvest.summarize(stats)
    assert total == {
        "in": 1182,
        "out": 836,
        "dropped": {"blocked_extension": 3, "low_karma": 342, "merged_duplicate": 1},
    }
    for st in stats:
        st.check()
        assert st.stage == "harvest"
    assert [p.name for p in harvest.links_parts(tmp_path, cfg)] == [
        f"part-0000{i}.parquet" for i in range(4)
    ]
    links = _links(tmp_path)
    assert len(links) == 836
    assert len({r["url"] for r in links}) == 836
    assert sum(r["n_posts"] for r in links) == 837
    assert all(r["karma"] >= 3 and r["karma"] == r["karma_max"] for r in links)
    ledger = _ledger(tmp_path)
    assert Counter(r["reason"] for r in ledger) == {
        "low_karma": 342,
        "blocked_extension": 3,
        "merged_duplicate": 1,
    }
    # Every line is a links row or a ledger row; together they name every post.
    assert len(links) + len(ledger) == 1182
    ids = {i for r in links for i in r["post_ids"]} | {r["key"] for r in ledger}
    assert ids == {p["id"] for p in posts}
    # Rows are sorted by url, and partitions follow the registered domain.
    for i, p in enumerate(harvest.links_parts(tmp_path, cfg)):
        table = pq.read_table(p)
        urls = table.column("url").to_pylist()
        assert urls == sorted(urls)
        assert all(harvest.part_of(d, 4) == i for d in table.column("domain").to_pylist())
    funnel = write_funnel(tmp_path)
    assert funnel["harvest"] == total
    assert "harvest_file" not in STAGES


def test_zst_and_xz_give_identical_links(shared_data: Path, tmp_path: Path) -> None:
    cfg = HarvestConfig(n_parts=3)
    for suffix in ("xz", "zst"):
        harvest.run(
            [str(shared_data / "reddit" / f"RS_v2_2005-0*.{suffix}")], tmp_path / suffix, cfg
        )
    assert _tree_digest(tmp_path / "xz", "links") == _tree_digest(tmp_path / "zst", "links")


def test_rerun_skips_and_keeps_bytes(shared_data: Path, tmp_path: Path) -> None:
    cfg = HarvestConfig(n_parts=2)
    inputs = [str(shared_data / "reddit" / "RS_v2_2005-06.zst")]
    first = harvest.run(inputs, tmp_path, cfg)
    before = {
        **_tree_digest(tmp_path, "links"),
        **_tree_digest(tmp_path, "ledger"),
        **_tree_digest(tmp_path, "_done"),
    }
    second = harvest.run(inputs, tmp_path, cfg)
    after = {
        **_tree_digest(tmp_path, "links"),
        **_tree_digest(tmp_path, "ledger"),
        **_tree_digest(tmp_path, "_done"),
    }
    assert before == after
    assert all(s.extra.get("skipped") for s in second)
    assert harvest.summarize(first) == harvest.summarize(second)


def test_new_month_reads_only_the_new_file(shared_data: Path, tmp_path: Path) -> None:
    cfg = HarvestConfig(n_parts=3)
    june = str(shared_data / "reddit" / "RS_v2_2005-06.zst")
    july = str(shared_data / "reddit" / "RS_v2_2005-07.zst")
    harvest.run([june], tmp_path / "inc", cfg)
    june_marker = next((tmp_path / "inc" / "_done" / "harvest_file").glob("RS_v2_2005-06*"))
    stamp = june_marker.stat().st_mtime_ns
    calls: list[str] = []
    real = harvest_files.harvest_file

    def spy(path, root, cfg, rules=None):  # records which dumps are actually decoded
        calls.append(Path(path).name)
        return real(path, root, cfg, rules)

    harvest_files.harvest_file = spy  # type: ignore[assignment]
    try:
        stats = harvest.run([june, july], tmp_path / "inc", cfg)
    finally:
        harvest_files.harvest_file = real  # type: ignore[assignment]
    assert calls == ["RS_v2_2005-07.zst"]
    assert june_marker.stat().st_mtime_ns == stamp
    fresh = harvest.run([june, july], tmp_path / "fresh", cfg)
    assert harvest.summarize(stats) == harvest.summarize(fresh)
    assert _tree_digest(tmp_path / "inc", "links") == _tree_digest(tmp_path / "fresh", "links")


# ---------------------------------------------------------------------------------------------
# Every schema era, in every container format

T2010 = 1262304000  # 2010-01-01T00:00:00Z


def _post(pid: str, url: str, **kw) -> dict:
    base = {
        "id": pid,
        "url": url,
        "score": 10,
        "subreddit": "news",
        "created_utc": T2010,
        "is_self": False,
        "over_18": False,
        "title": f"title {pid}",
        "domain": "x",
    }
    base.update(kw)
    return base


def era_lines() -> tuple[list[bytes], dict[str, str]]:
    """Lines of every era and edge case, and the expected fate of each post id."""
    posts: list[tuple[object, str]] = [
        (_post("a1", "HTTP://Example.COM:80/story?utm_source=x&id=1#top"), "link"),
        (_post("a2", "http://example.com/story?id=1", score=4), "merged_duplicate"),
        (_post("f1", "https://floats.org/a", created_utc=1262304000.0), "link"),
        (_post("s1", "https://strings.org/a", created_utc="1262304000"), "link"),
        (_post("s2", "https://isostring.org/a", created_utc="2010-01-01T00:00:00Z"), "link"),
        (
            {k: v for k, v in _post("ns", "https://noscore.org/").items() if k != "score"},
            "low_karma",
        ),
        (
            {
                **{k: v for k, v in _post("up", "https://upsonly.org/").items() if k != "score"},
                "ups": 7,
            },
            "link",
        ),
        (
            {
                k: v
                for k, v in _post("nsub", "https://nosub.org/").items()
                if k not in ("subreddit", "domain")
            }
            | {"permalink": "/r/Science/comments/nsub/x/"},
            "link",
        ),
        (
            _post(
                "ov",
                "https://www.reddit.com/gallery/ov",
                url_overridden_by_dest="https://override.org/real",
            ),
            "link",
        ),
        (
            _post(
                "xp",
                "/r/pics/comments/abc/x/",
                crosspost_parent="t3_abc",
                crosspost_parent_list=[{"url": "https://crossposted.org/story", "is_self": False}],
            ),
            "link",
        ),
        (_post("rl", "https://www.reddit.com/r/news/comments/rl/x/"), "reddit_link"),
        (_post("rm", "https://removed.org/", removed_by_category="moderator"), "removed"),
        (_post("dl", "https://deleted-author.org/", author="[deleted]"), "link"),
        (_post("sf", "https://www.reddit.com/r/news/comments/sf/x/", is_self=True), "self_post"),
        (
            {**_post("sf2", "https://www.reddit.com/r/a/comments/sf2/"), "domain": "self.a"}
            | {"is_self": None},
            "self_post",
        ),
        (_post("mu", ""), "missing_url"),
        ({k: v for k, v in _post("mu2", "x").items() if k != "url"}, "missing_url"),
        (_post("nf", "https://nsfw.org/", over_18=True), "nsfw"),
        (_post("ow", "https://late.org/", created_utc=1514764800), "out_of_window"),  # 2018-01-01
        (_post("lk", "https://low.org/", score=2), "low_karma"),
        (_post("im", "https://i.imgur.com/abc.png"), "blocked_domain"),
        (_post("gh", "https://github.com/user/repo"), "link"),
        (_post("gg", "https://www.google.com/search?q=x"), "link"),
        (_post("pn", "https://text.org/photo.PNG"), "blocked_extension"),
        (_post("ft", "ftp://files.org/x"), "invalid_url"),
        (_post("bs", "https://blocked-sub.org/", subreddit="BannedSub"), "blocked_subreddit"),
        (_post("ln", "https://long.org/" + "a" * 3000), "url_too_long"),
        (_post("sg", "https://surrogate.org/", title="emoji \ud83d split"), "link"),
        ({"kind": "t3", "data": _post("api", "https://api-listing.org/")}, "link"),
        (_post("td", "https://taken-down.org/page"), "takedown"),
        (_post("tu", "https://ok.org/removed-page"), "takedown"),
    ]
    lines = [json.dumps(p).encode() for p, _ in posts]
    fates = {p.get("data", p)["id"]: fate for p, fate in posts}  # type: ignore[union-attr]
    lines.insert(3, b'{"id": "broken", "url": ')  # truncated JSON
    lines.insert(5, b"[1, 2, 3]")
    lines.append(
        b'{"id": "u8", "url": "https://bad-utf8.org/", "score": 5, "title": "caf\xe9", '
        b'"created_utc": 1262304000, "subreddit": "news"}'
    )  # latin-1 byte in a title
    fates["u8"] = "link"
    fates["era.ndjson:4"] = "bad_json"
    fates["era.ndjson:6"] = "bad_json"
    return lines, fates


def _write(path: Path, data: bytes) -> Path:
    if path.suffix == ".zst":
        half = len(data) // 2
        cut = data.rfind(b"\n", 0, half) + 1
        c = zstandard.ZstdCompressor(level=3)
        path.write_bytes(c.compress(data[:cut]) + c.compress(data[cut:]))  # two frames
    elif path.suffix == ".xz":
        path.write_bytes(lzma.compress(data))
    elif path.suffix == ".bz2":
        path.write_bytes(bz2.compress(data))
    elif path.suffix == ".gz":
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("suffix", [".ndjson", ".zst", ".xz", ".bz2", ".gz"])
def test_every_era_and_format(tmp_path: Path, suffix: str) -> None:
    lines, fates = era_lines()
    dump = _write(tmp_path / f"era{suffix}", b"\n".join(lines) + b"\n")
    if suffix != ".ndjson":
        fates = {k.replace("era.ndjson", dump.name): v for k, v in fates.items()}
    takedown = tmp_path / "takedown.txt"
    takedown.write_text("# legal requests\ntaken-down.org\nHTTP://OK.ORG/removed-page#x\n")
    cfg = HarvestConfig(n_parts=2, subreddit_blocklist=["bannedsub"], takedown_file=str(takedown))
    root = tmp_path / "out"
    stats = harvest.run([str(dump)], root, cfg)
    got = {r["key"]: r["reason"] for r in _ledger(root)}
    links = _links(root)
    for r in links:
        got[r["post_ids"][0]] = "link"
    assert got == fates
    total = harvest.summarize(stats)
    assert total["in"] == len(lines)
    assert total["out"] == sum(1 for f in fates.values() if f == "link")
    by_url = {r["url"]: r for r in links}
    merged = by_url["http://example.com/story?id=1"]
    assert merged["post_ids"] == ["a1", "a2"] and merged["n_posts"] == 2
    assert (merged["karma"], merged["karma_max"], merged["karma_sum"]) == (10, 10, 14)
    assert merged["title"] == "title a1"
    assert merged["first_seen"] == datetime(2010, 1, 1, tzinfo=UTC)
    assert by_url["https://nosub.org/"]["subreddits"] == ["science"]
    assert by_url["https://upsonly.org/"]["karma"] == 7
    assert "https://override.org/real" in by_url
    assert "https://crossposted.org/story" in by_url
    assert by_url["https://surrogate.org/"]["title"] == "emoji \ufffd split"
    assert by_url["https://bad-utf8.org/"]["title"] == "caf\ufffd"
    assert by_url["https://github.com/user/repo"]["domain"] == "github.com"


def test_summed_karma_mode(tmp_path: Path) -> None:
    posts = [
        _post("p1", "https://a.org/x", score=1),
        _post("p2", "https://a.org/x/", score=2),  # same page? no: different path, own row
        _post("p3", "https://a.org/x?fbclid=1", score=2),
        _post("p4", "https://b.org/", score=2),
    ]
    dump = _write(tmp_path / "s.ndjson", b"\n".join(json.dumps(p).encode() for p in posts))
    cfg = HarvestConfig(n_parts=1, karma_mode="summed")
    stats = harvest.run([str(dump)], tmp_path / "out", cfg)
    links = _links(tmp_path / "out")
    assert [(r["url"], r["karma"], r["karma_max"], r["n_posts"]) for r in links] == [
        ("https://a.org/x", 3, 2, 2)
    ]
    assert harvest.summarize(stats)["dropped"] == {"low_karma": 2, "merged_duplicate": 1}


def test_takedown_applies_on_rebuild_without_reprocessing(
    shared_data: Path, tmp_path: Path
) -> None:
    dump = str(shared_data / "reddit" / "RS_v2_2005-06.zst")
    takedown = tmp_path / "takedown.txt"
    takedown.write_text("")
    cfg = HarvestConfig(n_parts=2, takedown_file=str(takedown))
    first = harvest.summarize(harvest.run([dump], tmp_path / "o", cfg))
    takedown.write_text("cnn.com\n")
    second = harvest.summarize(harvest.run([dump], tmp_path / "o", cfg))
    n_cnn = sum(1 for r in _read_real(Path(dump)) if "cnn.com" in r["domain"] and r["score"] >= 3)
    assert n_cnn > 0
    assert second["dropped"]["takedown"] == n_cnn
    assert second["out"] == first["out"] - n_cnn
    assert not any("cnn.com" in r["host"] for r in _links(tmp_path / "o"))


def test_no_input_is_a_config_error(tmp_path: Path) -> None:
    from pipeline.core.errors import ConfigError

    with pytest.raises(ConfigError):
        harvest.run([str(tmp_path / "nothing-*.zst")], tmp_path / "o", HarvestConfig())


def test_karma_shortcut_changes_nothing(shared_data: Path, tmp_path: Path) -> None:
    """The fast low-karma path and the full decode give byte-identical candidates and ledgers."""
    lines, _ = era_lines()
    extra = [
        b'{"id": "k1", "score": 1, "kind": "t3", "data": {"id": "k1in", "score": 50}}',
        b'{"id": "k2", "score": true, "url": "https://a.org/"}',
        b'{"id": "k3", "score": 2.0, "url": "https://a.org/"}',
        b'{"id": "k4", "score": -5, "title": "\xff"}',
        b'{"score": 0, "name": "t3_k5"}',
        b'{"id": "k6", "score": 1, "x": "\\ud800"}',
        b'{"id": "k7", "score": 1, "x": [1,]}',
        b'{"id": 123, "score": 0}',
    ]
    dump = _write(tmp_path / "mix.ndjson", b"\n".join(lines + extra) + b"\n")
    real = shared_data / "reddit" / "RS_v2_2005-07.zst"
    for path in (dump, real):
        digests = []
        for shortcut in (True, False):
            root = tmp_path / f"{path.name}-{shortcut}"
            st = harvest.harvest_file(path, root, HarvestConfig(n_parts=3), karma_shortcut=shortcut)
            digests.append(
                (st.to_json(), _tree_digest(root, "harvest"), _tree_digest(root, "ledger"))
            )
        assert digests[0] == digests[1]


def test_folder_input_skips_non_dumps(shared_data: Path, tmp_path: Path) -> None:
    """The shared folder holds LICENSE plus each month as .xz and .zst: every post twice."""
    stats = harvest.run([str(shared_data / "reddit")], tmp_path, HarvestConfig(n_parts=2))
    assert harvest.summarize(stats) == {
        "in": 2364,
        "out": 836,
        "dropped": {"blocked_extension": 6, "low_karma": 684, "merged_duplicate": 838},
    }
    assert all(r["n_posts"] >= 2 for r in _links(tmp_path))


def test_allowlist_window_nsfw_and_arctic_shift_shape(tmp_path: Path) -> None:
    posts = [
        # Arctic Shift lines: the API's data object plus its own _meta field.
        {
            **_post("as1", "https://arctic.org/a", subreddit="Science"),
            "_meta": {"retrieved_2nd_on": 1700000000},
            "retrieved_on": 1262390400,
        },
        _post("as2", "https://arctic.org/b", subreddit="cooking"),
        _post("old", "https://arctic.org/c", subreddit="science", created_utc=T2010 - 1),
        _post("nf", "https://arctic.org/d", subreddit="science", over_18=True),
    ]
    dump = _write(tmp_path / "RS_2010-01.ndjson", b"\n".join(json.dumps(p).encode() for p in posts))
    cfg = HarvestConfig(
        n_parts=1,
        subreddit_allowlist=["r/Science"],
        include_nsfw=True,
        start_date="2010-01-01",
        end_date="2010-01-31",
    )
    stats = harvest.run([str(dump)], tmp_path / "out", cfg)
    assert harvest.summarize(stats)["dropped"] == {"blocked_subreddit": 1, "out_of_window": 1}
    assert sorted(r["url"] for r in _links(tmp_path / "out")) == [
        "https://arctic.org/a",
        "https://arctic.org/d",
    ]


def test_smaller_rebuild_prunes_stale_outputs(shared_data: Path, tmp_path: Path) -> None:
    june = str(shared_data / "reddit" / "RS_v2_2005-06.zst")
    july = str(shared_data / "reddit" / "RS_v2_2005-07.zst")
    harvest.run([june, july], tmp_path, HarvestConfig(n_parts=4))
    stats = harvest.run([june], tmp_path, HarvestConfig(n_parts=2))
    assert sorted(p.name for p in (tmp_path / "links").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    ledger_names = sorted(p.name for p in (tmp_path / "ledger" / "harvest").iterdir())
    assert len(ledger_names) == 3 and ledger_names[0].startswith("file-RS_v2_2005-06.zst-")
    total = harvest.summarize(stats)
    assert total["in"] == 103
    assert write_funnel(tmp_path)["harvest"] == total
    assert len(_links(tmp_path)) + len(_ledger(tmp_path)) == 103
