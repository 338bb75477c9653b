"""Reddit API source: fetch new months as dump files that the harvest reads like any dump.

Credentials come from a Prefect Secret block (JSON: client_id, client_secret, user_agent),
else from REDDIT_CLIENT_ID / REDDIT_CLIENT_SECRET / REDDIT_USER_AGENT.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.blocks.system import Secret

from pipeline.core.config import RedditApiConfig
from pipeline.core.errors import ConfigError
from pipeline.harvest.reddit_api import RedditClient, fetch_month


def last_complete_month(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def _credentials(block_name: str) -> dict[str, str] | None:
    try:
        value = Secret.load(block_name).get()  # type: ignore[union-attr]
    except ValueError:  # no such block
        return None
    if not isinstance(value, dict) or not {"client_id", "client_secret"} <= value.keys():
        raise ConfigError(
            f"Secret block {block_name!r} must hold JSON with client_id and client_secret"
        )
    return value


def make_client(api: RedditApiConfig) -> RedditClient:
    creds = _credentials(api.secret_block)
    if creds is None:
        return RedditClient.from_env(base_url=api.base_url, token_url=api.token_url)
    return RedditClient(
        creds["client_id"],
        creds["client_secret"],
        creds.get("user_agent", "webtext-harvest/0.1"),
        base_url=api.base_url,
        token_url=api.token_url,
    )


@task(name="reddit-api", retries=2, retry_delay_seconds=30)
def fetch_api_months(api_data: dict[str, Any], out_dir: str) -> list[str]:
    """Fetch each configured month once: a month whose dump exists is not fetched again, so a
    monthly schedule adds only the new month."""
    api = RedditApiConfig.model_validate(api_data)
    dump_dir = Path(out_dir) / api.dump_dir
    months = api.months or [last_complete_month()]
    client = None
    paths = []
    for month in sorted(months):
        year, mon = (int(x) for x in month.split("-"))
        target = dump_dir / f"RS_api_{year:04d}-{mon:02d}.zst"
        if not target.exists():
            client = client or make_client(api)
            summary = fetch_month(
                client,
                dump_dir,
                api.subreddits,
                year,
                mon,
                listing=api.listing,
                max_pages=api.max_pages,
            )
            get_run_logger().info(
                "reddit api %s: %d posts in %d pages", month, summary.posts, summary.pages
            )
        paths.append(str(target))
    return paths
