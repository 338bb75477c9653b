"""The API source inside Prefect: credentials from a Secret block, months fetched once."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline import harvest
from pipeline.core.config import HarvestConfig, RedditApiConfig
from tests.test_reddit_api import CLIENT_ID, SECRET, FakeReddit, _handler, _posts

pytestmark = pytest.mark.slow


@pytest.fixture
def fake_api():
    state = FakeReddit(_posts(45))
    state.throttle_at_page = 0  # 429 handling is covered without Prefect
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_secret_block_and_month_fetched_once(prefect_harness, fake_api, tmp_path: Path):
    from prefect import flow
    from prefect.blocks.system import Secret

    from flows.reddit import fetch_api_months

    state, base = fake_api
    Secret(
        value={"client_id": CLIENT_ID, "client_secret": SECRET, "user_agent": "webtext-test/0.1"}
    ).save("reddit-test", overwrite=True)
    api = RedditApiConfig(
        subreddits=["news"],
        months=["2023-11"],
        secret_block="reddit-test",
        base_url=base,
        token_url=f"{base}/api/v1/access_token",
    )

    @flow
    def fetch_and_harvest() -> tuple[list[str], int]:
        paths = fetch_api_months(api.model_dump(mode="json"), str(tmp_path))
        stats = harvest.run(paths, tmp_path, HarvestConfig(end_date=None, n_parts=2))
        return paths, sum(s.n_out for s in stats)

    paths, links = fetch_and_harvest()
    assert paths == [str(tmp_path / "reddit-api" / "RS_api_2023-11.zst")]
    # 45 posts: 15 self posts (i % 3 == 0); of the rest, i % 5 == 0 have 1 karma (6 of them)
    assert links == 45 - 15 - 6
    requests = len(state.log)
    assert fetch_and_harvest()[1] == links
    assert len(state.log) == requests  # the month's dump exists: no second fetch
