"""Reddit API source against a fake Reddit API server on 127.0.0.1: paging, a 429 with a reset
header, rate-limit headers, an expired token; the written dump is harvested like any dump."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import zstandard

from pipeline import harvest
from pipeline.core.config import HarvestConfig
from pipeline.core.errors import ConfigError
from pipeline.harvest.reddit_api import RedditClient, fetch_month, write_listing_dump

CLIENT_ID, SECRET = "fake-id", "fake-secret"
T0 = 1700000000  # 2023-11-14


def _posts(n: int) -> list[dict]:
    """Newest first, as /new lists them; every third is a self post, every fifth low karma."""
    posts = []
    for i in range(n):
        pid = f"p{i:03d}"
        is_self = i % 3 == 0
        posts.append(
            {
                "id": pid,
                "name": f"t3_{pid}",
                "subreddit": "news",
                "title": f"Story {i}",
                "created_utc": float(T0 - 60 * i),
                "score": 1 if i % 5 == 0 else 10 + i,
                "is_self": is_self,
                "over_18": False,
                "url": (
                    f"https://www.reddit.com/r/news/comments/{pid}/"
                    if is_self
                    else f"https://site{i % 7}.example.org/article/{i}?utm_source=reddit"
                ),
            }
        )
    return posts


class FakeReddit:
    """State of the fake API: tokens it issued, a token it expires, a 429 it sends once."""

    def __init__(self, posts: list[dict], page_size: int = 10):
        self.posts = posts
        self.page_size = page_size
        self.tokens: list[str] = []
        self.valid: set[str] = set()
        self.log: list[tuple[str, str]] = []
        self.expire_after_pages = 2  # the first token dies after 2 pages
        self.throttle_at_page = 4  # the 4th listing request gets a 429 (once)
        self.throttled = False
        self.pages_served = 0


def _handler(state: FakeReddit) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            expect = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
            state.log.append(("POST", self.path))
            if self.headers.get("Authorization") != expect:
                self._send(401, {"error": "invalid_client"})
                return
            if form.get("grant_type") != ["client_credentials"]:
                self._send(400, {"error": "unsupported_grant_type"})
                return
            token = f"tok{len(state.tokens)}"
            state.tokens.append(token)
            state.valid.add(token)
            self._send(
                200,
                {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"},
            )

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(url.query)
            state.log.append(("GET", self.path))
            if not self.headers.get("User-Agent", "").startswith("webtext-test"):
                self._send(403, {"error": "no user agent"})
                return
            token = self.headers.get("Authorization", "").removeprefix("bearer ")
            if token not in state.valid:
                self._send(
                    401,
                    {"message": "Unauthorized", "error": 401},
                    {"WWW-Authenticate": 'Bearer realm="reddit", error="invalid_token"'},
                )
                return
            if url.path not in ("/r/news/new", "/r/news/top") or q.get("raw_json") != ["1"]:
                self._send(404, {"error": 404})
                return
            state.pages_served += 1
            if state.pages_served == state.throttle_at_page and not state.throttled:
                state.throttled = True
                self._send(
                    429,
                    {"error": 429},
                    {
                        "X-Ratelimit-Remaining": "0",
                        "X-Ratelimit-Used": "100",
                        "X-Ratelimit-Reset": "7",
                    },
                )
                return
            after = q.get("after", [None])[0]
            limit = min(int(q.get("limit", ["25"])[0]), state.page_size)
            start = 0
            if after:
                start = next(i for i, p in enumerate(state.posts) if p["name"] == after) + 1
            page = state.posts[start : start + limit]
            nxt = page[-1]["name"] if start + limit < len(state.posts) else None
            served = state.pages_served
            if served == state.expire_after_pages:
                state.valid.discard(token)  # this token expires right after this page
            remaining = "0" if served == 6 else "50"  # page 6 exhausts the quota: wait 3 s
            self._send(
                200,
                {
                    "kind": "Listing",
                    "data": {"after": nxt, "children": [{"kind": "t3", "data": p} for p in page]},
                },
                {
                    "X-Ratelimit-Remaining": remaining,
                    "X-Ratelimit-Used": "50",
                    "X-Ratelimit-Reset": "3",
                },
            )

    return Handler


@pytest.fixture
def fake_reddit() -> Iterator[tuple[FakeReddit, str]]:
    state = FakeReddit(_posts(45))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _client(base: str, clock: FakeClock, secret: str = SECRET) -> RedditClient:
    return RedditClient(
        CLIENT_ID,
        secret,
        "webtext-test/0.1",
        base_url=base,
        token_url=f"{base}/api/v1/access_token",
        sleep=clock.sleep,
        clock=clock,
    )


def test_paging_429_and_expired_token(fake_reddit: tuple[FakeReddit, str], tmp_path: Path) -> None:
    state, base = fake_reddit
    clock = FakeClock()
    client = _client(base, clock)
    summary = write_listing_dump(client, tmp_path / "api" / "RS_api_news.zst", ["news"])
    # 45 posts, 10 per page -> 5 pages, every post exactly once.
    assert summary.posts == 45 and summary.pages == 5
    data = zstandard.ZstdDecompressor().decompress(
        (tmp_path / "api" / "RS_api_news.zst").read_bytes()
    )
    ids = [json.loads(line)["id"] for line in data.splitlines()]
    assert ids == sorted(p["id"] for p in state.posts)
    # Token 0 expired after page 2: one 401, a new token, the page repeated.
    assert state.tokens == ["tok0", "tok1"] and summary.token_refreshes == 2
    # The 429 carried X-Ratelimit-Reset: 7 -> the client waited exactly that, then retried.
    assert clock.sleeps == [7.0]
    afters = [
        urllib.parse.parse_qs(urllib.parse.urlsplit(p).query).get("after", [None])[0]
        for m, p in state.log
        if m == "GET"
    ]
    # pages: 1, 2, (401) 3, 3, (429) 4, 4, 5
    assert afters == [None, "t3_p009", "t3_p019", "t3_p019", "t3_p029", "t3_p029", "t3_p039"]

    # The dump is a dump like any other for the harvest stage.
    cfg = HarvestConfig(n_parts=2, end_date=None)
    stats = harvest.run([str(tmp_path / "api")], tmp_path / "out", cfg)
    total = harvest.summarize(stats)
    n_low = sum(1 for i in range(45) if i % 5 == 0)  # karma is checked first
    n_self = sum(1 for i in range(45) if i % 3 == 0 and i % 5)
    assert total == {
        "in": 45,
        "out": 45 - n_self - n_low,
        "dropped": {"low_karma": n_low, "self_post": n_self},
    }


def test_remaining_zero_waits_for_reset(fake_reddit: tuple[FakeReddit, str]) -> None:
    state, base = fake_reddit
    state.throttle_at_page = 0  # no 429 here
    state.expire_after_pages = 0
    state.page_size = 5
    clock = FakeClock()
    client = _client(base, clock)
    posts = list(client.iter_listing("r/news/new"))
    assert len(posts) == 45
    # Page 6 said Remaining: 0, Reset: 3 -> exactly one 3 s wait before page 7.
    assert clock.sleeps == [3.0]


def test_since_stops_a_newest_first_listing(fake_reddit: tuple[FakeReddit, str]) -> None:
    _, base = fake_reddit
    client = _client(base, FakeClock())
    posts = list(client.iter_listing("r/news/new", since=T0 - 60 * 14.5))
    assert [p["id"] for p in posts] == [f"p{i:03d}" for i in range(15)]


def test_bad_credentials_and_env(
    fake_reddit: tuple[FakeReddit, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base = fake_reddit
    with pytest.raises(ConfigError, match="credentials refused"):
        _client(base, FakeClock(), secret="wrong").get("r/news/new")
    for k in ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ConfigError, match="REDDIT_CLIENT_ID"):
        RedditClient.from_env()
    monkeypatch.setenv("REDDIT_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("REDDIT_USER_AGENT", "webtext-test/0.1")
    client = RedditClient.from_env(base_url=base, token_url=f"{base}/api/v1/access_token")
    assert len(list(client.iter_listing("r/news/new", max_pages=1))) == 10


def test_fetch_month_keeps_only_that_month(
    fake_reddit: tuple[FakeReddit, str], tmp_path: Path
) -> None:
    state, base = fake_reddit
    state.throttle_at_page = 0
    state.expire_after_pages = 0
    for post in state.posts[40:]:
        post["created_utc"] = 1698796799.0  # 2023-10-31T23:59:59Z
    summary = fetch_month(_client(base, FakeClock()), tmp_path, ["news"], 2023, 11)
    assert summary.path == tmp_path / "RS_api_2023-11.zst" and summary.posts == 40
    assert any("/r/news/top?" in p and "t=month" in p for _, p in state.log)
