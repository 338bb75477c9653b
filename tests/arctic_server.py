"""Arctic Shift test fixtures: submissions in its record schema, and a fake API server.

Records follow Arctic Shift's RS_YYYY-MM dumps of 2023-11 on (github.com/ArthurHeitmann/
arctic_shift: file_content_explanations.md and schemas/RS/2024/*.ts): keys sorted, UTF-8,
`retrieved_on`, the `_meta` object of the second retrieval (retrieved_2nd_on, is_edited,
was_deleted_later + removal_type), created_utc and score as JSON integers, no Pushshift-only
fields (`retrieved_utc`, `subreddit_subscribers` of the time, `created` float...).

The server answers GET /api/posts/search (subreddit, after, before, limit 1-100, sort=asc) with
{"data": [...]} ordered by created_utc then id, `after`/`before` exclusive, and announces a
fixed-window rate limit in X-RateLimit-Limit / -Remaining / -Reset (seconds to the window's
end), answering 429 with Retry-After past it. Failures are scripted per request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

MONTH = "2026-10"
MONTH_START = 1790812800  # 2026-10-01T00:00:00Z
MONTH_END = 1793491200  # 2026-11-01T00:00:00Z


def arctic_post(
    pid: str,
    created: float,
    subreddit: str,
    url: str,
    score: int = 10,
    title: str = "A title",
    **extra: Any,
) -> dict[str, Any]:
    """One submission as Arctic Shift stores it (a link post unless `extra` says otherwise)."""
    domain = url.split("/")[2] if "://" in url else f"self.{subreddit}"
    post: dict[str, Any] = {
        "_meta": {"retrieved_2nd_on": int(created) + 129600},
        "all_awardings": [],
        "archived": False,
        "author": f"user_{pid}",
        "author_flair_richtext": [],
        "author_flair_text": None,
        "author_fullname": f"t2_{pid}x",
        "can_gild": False,
        "created": int(created),
        "created_utc": created,
        "distinguished": None,
        "domain": domain,
        "downs": 0,
        "edited": False,
        "gilded": 0,
        "hide_score": False,
        "id": pid,
        "is_self": False,
        "is_video": False,
        "link_flair_text": None,
        "locked": False,
        "media": None,
        "name": f"t3_{pid}",
        "num_comments": 4,
        "num_crossposts": 0,
        "over_18": False,
        "permalink": f"/r/{subreddit}/comments/{pid}/a_title/",
        "pinned": False,
        "removed_by_category": None,
        "retrieved_on": int(created) + 30,
        "score": score,
        "selftext": "",
        "spoiler": False,
        "stickied": False,
        "subreddit": subreddit,
        "subreddit_id": "t5_2qh3l",
        "subreddit_name_prefixed": f"r/{subreddit}",
        "subreddit_type": "public",
        "thumbnail": "default",
        "title": title,
        "total_awards_received": 0,
        "ups": score,
        "upvote_ratio": 0.93,
        "url": url,
    }
    post.update(extra)
    return dict(sorted(post.items()))


def dump_line(post: dict[str, Any]) -> bytes:
    try:
        return json.dumps(post, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate: as its escape, as the client writes it
        return json.dumps(post, sort_keys=True, separators=(",", ":")).encode()


def generated_month(subreddits: dict[str, int], ties: int = 5) -> dict[str, list[dict[str, Any]]]:
    """{subreddit: posts} of MONTH: `n` link posts per subreddit spread over the month, and
    every 23rd second-group holding `ties` posts created in the same second (page boundaries
    fall inside such groups). Ids are base 36 and unique across subreddits."""
    out: dict[str, list[dict[str, Any]]] = {}
    serial = 0
    for s, (sub, n) in enumerate(sorted(subreddits.items())):
        posts = []
        i = 0
        second = MONTH_START + s
        while i < n:
            group = ties if (i // ties) % 23 == 7 else 1
            for _ in range(min(group, n - i)):
                serial += 1
                pid = _base36(36**5 + serial * 7919)
                posts.append(
                    arctic_post(
                        pid,
                        second,
                        sub,
                        f"https://site{serial % 17}.example.com/{sub}/story-{serial}",
                        score=serial % 9,  # 0..8: about a third below 3 karma
                        title=f"Story {serial} \u2013 caf\u00e9",
                    )
                )
                i += 1
            second += 3607  # spread over the month, never past its end for n < 740
        out[sub] = posts
    return out


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    while n:
        n, r = divmod(n, 36)
        s = digits[r] + s
    return s


@dataclass
class Script:
    """What the fake server does besides answering."""

    rate_limit: int = 1000  # requests per window
    window_s: float = 1.0
    inclusive: bool = False  # `after` means >= instead of >
    ids_descending: bool = False  # posts of one second in descending id order
    # Statuses served to the first requests, in order (then normal answers).
    before: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    fail_after: int | None = None  # after this many answered pages, every request gets 500
    always: int | None = None  # every request gets this status
    delay_s: float = 0.0  # before answering a page (a slow server, to kill a client mid-way)


@dataclass
class Record:
    at: float
    status: int
    params: dict[str, str]
    remaining: int = 0  # what the answer announced
    reset: float = 0.0


class FakeArcticShift:
    def __init__(self, posts: dict[str, list[dict[str, Any]]], script: Script | None = None):
        self.posts = {
            sub.lower(): sorted(ps, key=lambda p: (int(p["created_utc"]), p["id"]))
            for sub, ps in posts.items()
        }
        self.script = script or Script()
        self.records: list[Record] = []
        self.pages = 0
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def ok_requests(self) -> list[Record]:
        return [r for r in self.records if r.status == 200]

    def answer(self, path: str, query: str) -> tuple[int, dict[str, str], bytes]:
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        now = time.monotonic()
        with self.lock:
            window = int((now - self.t0) // self.script.window_s)
            in_window = sum(
                1
                for r in self.records
                if int((r.at - self.t0) // self.script.window_s) == window and r.status != 429
            )
            reset = self.t0 + (window + 1) * self.script.window_s - now
            limit_headers = {
                "X-RateLimit-Limit": str(self.script.rate_limit),
                "X-RateLimit-Remaining": str(max(self.script.rate_limit - in_window - 1, 0)),
                "X-RateLimit-Reset": f"{reset:.3f}",
            }
            status, headers, body = self._decide(path, params, in_window, reset, limit_headers)
            remaining = int(limit_headers["X-RateLimit-Remaining"])
            self.records.append(Record(now, status, params, remaining, reset))
        return status, headers, body

    def _decide(
        self,
        path: str,
        params: dict[str, str],
        in_window: int,
        reset: float,
        limit_headers: dict[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        sc = self.script
        if in_window >= sc.rate_limit:
            return 429, {**limit_headers, "Retry-After": f"{reset:.3f}"}, b'{"error":"slow down"}'
        if sc.always is not None:
            return sc.always, limit_headers, b'{"error":"unavailable"}'
        if sc.before:
            status, extra = sc.before.pop(0)
            return status, {**limit_headers, **extra}, b'{"error":"scripted"}'
        if sc.fail_after is not None and self.pages >= sc.fail_after:
            return 500, limit_headers, b'{"error":"internal"}'
        if path != "/api/posts/search":
            return 404, limit_headers, b'{"error":"not found"}'
        try:
            limit = int(params.get("limit", "25"))
            after = int(params["after"])
            before = int(params["before"])
        except (KeyError, ValueError):
            return 400, limit_headers, b'{"error":"bad parameters"}'
        if not 1 <= limit <= 100 or params.get("sort") != "asc":
            return 400, limit_headers, b'{"error":"bad parameters"}'
        posts = self.posts.get(params.get("subreddit", "").lower(), [])
        lo = (lambda c: c >= after) if sc.inclusive else (lambda c: c > after)
        data = [p for p in posts if lo(int(p["created_utc"])) and int(p["created_utc"]) < before]
        if sc.ids_descending:
            data.sort(key=lambda p: p["id"], reverse=True)
            data.sort(key=lambda p: int(p["created_utc"]))
        if sc.delay_s:
            time.sleep(sc.delay_s)
        self.pages += 1
        body = json.dumps({"data": data[:limit]}).encode()
        return 200, {**limit_headers, "Content-Type": "application/json"}, body


@contextmanager
def serve(fake: FakeArcticShift) -> Iterator[FakeArcticShift]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            status, headers, body = fake.answer(url.path, url.query)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
