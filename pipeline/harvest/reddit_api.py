"""Reddit API source for months no dump covers yet.

`RedditClient` speaks OAuth2 client credentials ("application only"), pages through listing
endpoints with `after`, and honours rate limits from the response headers
(X-Ratelimit-Remaining / X-Ratelimit-Reset, and Retry-After or the reset on a 429). An expired
or revoked token (401) is renewed once and the request repeated.

`write_listing_dump` stores what it fetched as an NDJSON .zst dump (one submission object per
line, sorted by id), which `pipeline.harvest.run` reads like any Pushshift/Arctic Shift file.
Only the standard library is used for HTTP.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import zstandard

from pipeline.core.errors import ConfigError, RetryableError
from pipeline.core.io import atomic_write_bytes

log = logging.getLogger(__name__)

API_BASE = "https://oauth.reddit.com"
TOKEN_URL = "https://www.reddit.com/api/v1/access_token"
ENV_ID, ENV_SECRET, ENV_AGENT = "REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT"
PAGE_LIMIT = 100  # Reddit's maximum page size


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class FetchSummary:
    path: Path
    posts: int
    pages: int
    requests: int
    token_refreshes: int
    rate_limit_waits: list[float] = field(default_factory=list)


class RedditClient:
    """Minimal OAuth client for Reddit's listing endpoints.

    `base_url` and `token_url` point elsewhere in tests (a fake server on 127.0.0.1); `sleep`
    and `clock` are injectable so rate-limit waits are observable without waiting.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        user_agent: str,
        base_url: str = API_BASE,
        token_url: str = TOKEN_URL,
        timeout: float = 30.0,
        max_retries: int = 5,
        min_remaining: float = 1.0,
        max_wait: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not client_id or not client_secret:
            raise ConfigError("Reddit API: client id and secret are required")
        if not user_agent:
            raise ConfigError("Reddit API: a descriptive user agent is required by Reddit")
        self.client_id = client_id
        self.client_secret = client_secret
        self.user_agent = user_agent
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.min_remaining = min_remaining
        self.max_wait = max_wait
        self.sleep = sleep
        self.clock = clock
        self._token: _Token | None = None
        self._wait_until = 0.0  # clock time before which the rate limit allows no request
        self.requests = 0
        self.pages = 0
        self.token_refreshes = 0
        self.rate_limit_waits: list[float] = []

    @classmethod
    def from_env(cls, **kwargs: Any) -> RedditClient:
        """Credentials from REDDIT_CLIENT_ID / REDDIT_CLIENT_SECRET / REDDIT_USER_AGENT."""
        missing = [k for k in (ENV_ID, ENV_SECRET, ENV_AGENT) if not os.environ.get(k)]
        if missing:
            raise ConfigError(f"Reddit API: set {', '.join(missing)} in the environment")
        return cls(os.environ[ENV_ID], os.environ[ENV_SECRET], os.environ[ENV_AGENT], **kwargs)

    # -- HTTP ----------------------------------------------------------------------------------

    def _open(self, req: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
        self.requests += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:
            body = err.read() if err.fp is not None else b""
            return err.code, {k.lower(): v for k, v in err.headers.items()}, body
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            raise RetryableError(f"Reddit API unreachable: {err}") from err

    def _fetch_token(self) -> _Token:
        auth = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        req = urllib.request.Request(
            self.token_url,
            data=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
            headers={"Authorization": f"Basic {auth}", "User-Agent": self.user_agent},
            method="POST",
        )
        status, _, body = self._open(req)
        if status in (401, 403):
            raise ConfigError(f"Reddit API: credentials refused (HTTP {status})")
        if status != 200:
            raise RetryableError(f"Reddit API: token request failed with HTTP {status}")
        data = json.loads(body)
        if "access_token" not in data:
            raise ConfigError(f"Reddit API: no token in response: {data.get('error', data)}")
        self.token_refreshes += 1
        # Renew a minute early so a long page loop never sends a token at its last second.
        expires = float(data.get("expires_in", 3600))
        return _Token(data["access_token"], self.clock() + max(expires - 60.0, expires / 2))

    def _token_value(self) -> str:
        if self._token is None or self.clock() >= self._token.expires_at:
            self._token = self._fetch_token()
        return self._token.value

    def _note_rate_limit(self, headers: dict[str, str]) -> None:
        try:
            remaining = float(headers["x-ratelimit-remaining"])
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        if remaining < self.min_remaining:
            self._wait_until = max(self._wait_until, self.clock() + reset)

    def _wait(self, seconds: float) -> None:
        seconds = min(max(seconds, 0.0), self.max_wait)
        if seconds > 0:
            self.rate_limit_waits.append(seconds)
            self.sleep(seconds)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET an API path as JSON, with token renewal, rate limits and retries."""
        query = urllib.parse.urlencode({**(params or {}), "raw_json": 1})
        url = f"{self.base_url}/{path.lstrip('/')}?{query}"
        renewed = False
        for attempt in range(self.max_retries + 1):
            pause = self._wait_until - self.clock()
            if pause > 0:
                self._wait(pause)
            req = urllib.request.Request(
                url,
                headers={
                    "Authorization": f"bearer {self._token_value()}",
                    "User-Agent": self.user_agent,
                },
            )
            status, headers, body = self._open(req)
            self._note_rate_limit(headers)
            if status == 200:
                return json.loads(body)
            if status == 401 and not renewed:
                self._token = None  # expired or revoked: renew once, then it is a real refusal
                renewed = True
                continue
            if status == 429:
                self._wait(_retry_after(headers, default=2.0**attempt))
                continue
            if status >= 500:
                self._wait(min(2.0**attempt, 60.0))
                continue
            raise ConfigError(f"Reddit API: GET {path} failed with HTTP {status}")
        raise RetryableError(
            f"Reddit API: GET {path} still failing after {self.max_retries} retries"
        )

    # -- Listings ------------------------------------------------------------------------------

    def iter_listing(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        max_pages: int | None = None,
        since: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Submissions of a listing (e.g. r/news/new), page by page via `after`.

        `since` (epoch seconds) stops a newest-first listing at the first older post."""
        after: str | None = None
        pages = 0
        while max_pages is None or pages < max_pages:
            query = {"limit": PAGE_LIMIT, **(params or {})}
            if after:
                query["after"] = after
            data = self.get(path, query)
            pages += 1
            self.pages += 1
            listing = data.get("data", {}) if isinstance(data, dict) else {}
            children = listing.get("children") or []
            for child in children:
                post = child.get("data") if isinstance(child, dict) else None
                if not isinstance(post, dict):
                    continue
                if since is not None and float(post.get("created_utc") or 0) < since:
                    return
                yield post
            after = listing.get("after")
            if not after or not children:
                return


def _retry_after(headers: dict[str, str], default: float) -> float:
    for name in ("retry-after", "x-ratelimit-reset"):
        try:
            return float(headers[name])
        except (KeyError, ValueError):
            continue
    return default


def write_listing_dump(
    client: RedditClient,
    out_path: str | Path,
    subreddits: Iterable[str],
    listing: str = "new",
    since: float | None = None,
    until: float | None = None,
    max_pages: int | None = None,
    params: dict[str, Any] | None = None,
) -> FetchSummary:
    """Fetch `listing` of each subreddit into one NDJSON .zst dump (atomic write).

    Posts are deduplicated by id (a listing shifts while it is paged) and written sorted by id
    with sorted keys, so the same posts give the same bytes. `until` drops posts newer than it
    (a month's dump ends at the month's end)."""
    out = Path(out_path)
    posts: dict[str, dict[str, Any]] = {}
    pages_before = client.pages
    for sub in sorted(set(subreddits)):
        # `since` stops paging only on newest-first listings; elsewhere it just filters.
        stop = since if listing == "new" else None
        for post in client.iter_listing(
            f"r/{sub}/{listing}", params=params, max_pages=max_pages, since=stop
        ):
            if since is not None and float(post.get("created_utc") or 0) < since:
                continue
            if until is not None and float(post.get("created_utc") or 0) >= until:
                continue
            pid = str(post.get("id") or post.get("name") or "")
            if pid:
                posts[pid] = post
    lines = b"".join(
        json.dumps(posts[k], sort_keys=True, separators=(",", ":")).encode() + b"\n"
        for k in sorted(posts)
    )
    data = zstandard.ZstdCompressor(level=10).compress(lines) if out.suffix == ".zst" else lines
    atomic_write_bytes(out, data)
    return FetchSummary(
        path=out,
        posts=len(posts),
        pages=client.pages - pages_before,
        requests=client.requests,
        token_refreshes=client.token_refreshes,
        rate_limit_waits=list(client.rate_limit_waits),
    )


def fetch_month(
    client: RedditClient,
    out_dir: str | Path,
    subreddits: Iterable[str],
    year: int,
    month: int,
    listing: str = "top",
    max_pages: int | None = None,
) -> FetchSummary:
    """One month of posts of `subreddits` as out_dir/RS_api_YYYY-MM.zst, a dump harvest reads.

    Reddit serves at most ~1,000 posts per listing, so this covers a month's top posts of
    chosen subreddits, not all of Reddit (that needs a dump). `top` with t=month, run soon
    after the month ends, sees scores that have settled; `new` sees scores of fresh posts."""
    from datetime import datetime

    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    params = {"t": "month"} if listing == "top" else None
    return write_listing_dump(
        client,
        Path(out_dir) / f"RS_api_{year:04d}-{month:02d}.zst",
        subreddits,
        listing=listing,
        since=start.timestamp(),
        until=end.timestamp(),
        max_pages=max_pages,
        params=params,
    )
