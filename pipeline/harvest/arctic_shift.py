"""Arctic Shift API source: a month that has no dump yet, fetched as a dump file.

Pushshift's dumps went offline in 2026-09; Arctic Shift (arctic-shift.photon-reddit.com)
publishes the same monthly RS_YYYY-MM.zst files and serves posts without Reddit credentials:
GET {base}/api/posts/search?subreddit=S&after=T&before=T&limit=1..100&sort=asc answers
{"data": [...]} ordered by created_utc (api/README.md of github.com/ArthurHeitmann/
arctic_shift). There is no cursor, so pages are walked by created_utc: the next page asks for
posts after the last page's newest second minus one, which repeats that second (ids already
seen are skipped) and so loses no post at a page boundary, whether the server's `after` is
exclusive or inclusive. More than a page of posts in one second of one subreddit cannot be
paged that way and is an error rather than a silent loss.

Only configured subreddits are fetched: a month of all of Reddit is ~40M posts, 400k requests
at the default pace of one per second (4.6 days) of a volunteer-run service; that is what its
monthly dump files are for.

Pacing: at most `requests_per_second`; when X-RateLimit-Remaining reaches 0 the client waits
X-RateLimit-Reset (seconds; an epoch value is read as a time); 429, 5xx (and 422 "Timeout",
which the service answers under load) wait Retry-After or an exponential backoff, up to
`max_retries`, then fail with ArcticShiftError (a clear message; the build goes on without
the month and reports it).

Resume: progress lives in OUT/arctic-shift/work/RS_YYYY-MM/: per subreddit the posts fetched
so far (`<sub>.ndjson.part`, appended and fsynced a page at a time) and a state file with each
subreddit's cursor, written atomically after the page's posts are on disk. A rerun continues
from there; a page fetched twice adds nothing. Only when every subreddit is complete is the
dump written, to a temporary name and renamed to DUMP_DIR/RS_YYYY-MM.zst: one line per post,
keys sorted, compact, subreddit blocks in name order, each sorted by (created_utc, id), so the
same posts give the same bytes however often the fetch was interrupted. Memory: the ids of one
subreddit-month while fetching it, one second's posts while writing. The harvest reads it
like any dump; a real Arctic Shift dump dropped in its place later replaces it.
"""

from __future__ import annotations

import email.utils
import glob
import itertools
import json
import logging
import math
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.client import HTTPException
from pathlib import Path
from typing import Any

import msgspec
import zstandard

from pipeline.core.config import ArcticShiftConfig, HarvestConfig
from pipeline.core.errors import WebtextError
from pipeline.core.io import atomic_write_json, temp_path

log = logging.getLogger(__name__)

SEARCH_PATH = "/api/posts/search"
WORK_DIR = "arctic-shift/work"
SUMMARY_DIR = "arctic-shift/fetched"
DEFAULT_DUMP_DIR = "arctic-shift/dumps"
ZSTD_LEVEL = 10


class ArcticShiftError(WebtextError):
    """The API refused a request, or kept failing after the retries: the month is not fetched
    (what was fetched stays cached for the next run)."""


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    waits: list[float] = field(default_factory=list)  # every pause beyond the own pace


class ArcticShiftClient:
    """Requests to the search endpoint, paced, rate-limited and retried. `sleep` and `clock` are
    injectable; tests use a real server and real time."""

    def __init__(
        self,
        cfg: ArcticShiftConfig,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cfg = cfg
        self.sleep = sleep
        self.clock = clock
        self.interval = 1.0 / cfg.requests_per_second
        self._next_at = 0.0  # own pace: clock time of the next request at the earliest
        self._wait_until = 0.0  # what the server asked for (rate-limit reset, Retry-After)
        self.stats = ClientStats()

    def _pace(self) -> None:
        now = self.clock()
        until = max(self._next_at, self._wait_until)
        if until > now:
            if self._wait_until > self._next_at:
                self.stats.waits.append(until - now)
            self.sleep(until - now)
            now = until
        self._next_at = now + self.interval

    def _hold(self, seconds: float) -> None:
        """No request before `seconds` from now (capped by max_wait_s)."""
        seconds = min(max(seconds, 0.0), self.cfg.max_wait_s)
        self._wait_until = max(self._wait_until, self.clock() + seconds)

    def _open(self, url: str) -> tuple[int, dict[str, str], bytes]:
        self.stats.requests += 1
        req = urllib.request.Request(
            url, headers={"User-Agent": self.cfg.user_agent, "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:
            body = err.read() if err.fp is not None else b""
            return err.code, {k.lower(): v for k, v in err.headers.items()}, body

    def _note_rate_limit(self, headers: dict[str, str]) -> None:
        remaining = _number(headers.get("x-ratelimit-remaining"))
        reset = seconds_until(headers.get("x-ratelimit-reset"))
        if remaining is not None and reset is not None and remaining < 1:
            self._hold(reset)

    def search(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """One page of /api/posts/search: the `data` list."""
        url = f"{self.cfg.base_url}{SEARCH_PATH}?{urllib.parse.urlencode(params)}"
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                self.stats.retries += 1
            self._pace()
            backoff = self.cfg.backoff_s * 2**attempt
            try:
                status, headers, body = self._open(url)
            except (urllib.error.URLError, TimeoutError, ConnectionError, HTTPException) as err:
                last = f"{type(err).__name__}: {err}"
                self._hold(backoff)
                continue
            self._note_rate_limit(headers)
            if status == 200:
                try:
                    data = json.loads(body)["data"]
                except (ValueError, KeyError, TypeError) as err:
                    last = f"malformed answer ({type(err).__name__}): {body[:120]!r}"
                    self._hold(backoff)
                    continue
                if not isinstance(data, list):
                    last = f"`data` is not a list: {body[:120]!r}"
                    self._hold(backoff)
                    continue
                return data
            if status == 429 or status >= 500 or (status == 422 and b"timeout" in body.lower()):
                last = f"HTTP {status}"
                wait = seconds_until(headers.get("retry-after"))
                self._hold(backoff if wait is None else wait)
                continue
            raise ArcticShiftError(
                f"Arctic Shift refused GET {url} with HTTP {status}: "
                f"{body[:200].decode('utf-8', 'replace')}"
            )
        raise ArcticShiftError(
            f"Arctic Shift: GET {url} still failing after {self.cfg.max_retries} retries "
            f"(last: {last})"
        )


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def seconds_until(value: str | None) -> float | None:
    """A wait header as seconds from now: seconds, an epoch time, or an HTTP date."""
    if value is None:
        return None
    number = _number(value)
    if number is None:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return when.timestamp() - time.time()
    if number > 1e12:  # epoch milliseconds
        return number / 1000 - time.time()
    if number > 1e9:  # epoch seconds
        return number - time.time()
    return number


# ---------------------------------------------------------------------------------------------
# Months


def month_window(month: str) -> tuple[int, int]:
    """[start, end) of a YYYY-MM month in epoch seconds (UTC)."""
    year, mon = (int(x) for x in month.split("-"))
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


def dump_name(month: str) -> str:
    return f"RS_{month}.zst"


def settled_months(cfg: ArcticShiftConfig, now: float | None = None) -> list[str]:
    """The months a run looks at: cfg.months, else the last `recent_months` complete months
    that ended at least settle_hours ago (so a monthly schedule that runs early catches up)."""
    now = time.time() if now is None else now
    if cfg.months:
        return sorted(set(cfg.months))
    horizon = datetime.fromtimestamp(now - cfg.settle_hours * 3600, tz=UTC)
    year, mon = horizon.year, horizon.month  # the month under way at the horizon: not settled
    months = []
    for _ in range(cfg.recent_months):
        year, mon = (year, mon - 1) if mon > 1 else (year - 1, 12)
        months.append(f"{year:04d}-{mon:02d}")
    return sorted(months)


def is_settled(month: str, cfg: ArcticShiftConfig, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    return month_window(month)[1] + cfg.settle_hours * 3600 <= now


def dump_dir_of(cfg: HarvestConfig, out_dir: Path) -> Path:
    if cfg.arctic_shift.dump_dir:
        return Path(cfg.arctic_shift.dump_dir)
    for item in cfg.inputs:
        if Path(item).is_dir():
            return Path(item)
    return Path(out_dir) / DEFAULT_DUMP_DIR


def existing_dump(month: str, places: Iterable[str | Path]) -> Path | None:
    """A dump of `month` among files, folders and globs (RS_YYYY-MM.* or Pushshift's
    RS_v2_YYYY-MM.*), if there is one: such a month needs no fetch."""
    pattern = re.compile(rf"RS_(?:v2_)?{re.escape(month)}\.(?:zst|xz|bz2|gz|ndjson|jsonl|json)")
    for place in places:
        p = Path(place)
        if p.is_dir():
            candidates: Iterable[Path] = p.rglob(f"RS_*{month}.*")
        elif p.is_file():
            candidates = [p]
        else:
            candidates = [Path(m) for m in glob.glob(str(p), recursive=True)]
        for c in sorted(candidates):
            if c.is_file() and pattern.fullmatch(c.name):
                return c
    return None


# ---------------------------------------------------------------------------------------------
# Fetching one month


@dataclass
class MonthResult:
    month: str
    status: str  # fetched | cached | has_dump | unsettled | failed
    path: str | None = None
    posts: int = 0
    pages: int = 0
    requests: int = 0
    retries: int = 0
    resumed: bool = False
    skipped_records: int = 0  # records without an id or created_utc, or outside the month
    waits: list[float] = field(default_factory=list)
    error: str | None = None


class _State:
    """Per subreddit: cursor (`after` of the next request), done, pages; saved atomically."""

    def __init__(self, path: Path, month: str, base_url: str):
        self.path = path
        data: dict[str, Any] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except ValueError:
                data = {}
        if data.get("month") != month or data.get("base_url") != base_url:
            data = {"month": month, "base_url": base_url, "subreddits": {}}
        self.data = data
        self.resumed = bool(data["subreddits"])

    def sub(self, name: str) -> dict[str, Any]:
        subs: dict[str, dict[str, Any]] = self.data["subreddits"]
        return subs.setdefault(name, {"cursor": None, "done": False, "pages": 0})

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


def _created(post: dict[str, Any]) -> int | None:
    value = post.get("created_utc")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(float(value))
    except (ValueError, OverflowError):
        return None


def _canonical(post: dict[str, Any]) -> bytes:
    try:
        return json.dumps(post, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate (a split emoji): kept as its \u escape
        return json.dumps(post, sort_keys=True, separators=(",", ":")).encode()


def _cut_torn_tail(path: Path) -> None:
    """Cut a line torn by a kill off the end of a posts file."""
    with open(path, "r+b") as f:
        size = pos = f.seek(0, os.SEEK_END)
        cut = 0
        while pos > 0:
            step = min(1 << 16, pos)
            f.seek(pos - step)
            newline = f.read(step).rfind(b"\n")
            if newline >= 0:
                cut = pos - step + newline + 1
                break
            pos -= step
        if cut < size:
            f.truncate(cut)


def _read_part(path: Path) -> Iterator[bytes]:
    """The complete lines of a subreddit's posts file, streamed."""
    if not path.is_file():
        return
    _cut_torn_tail(path)
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield line.rstrip(b"\n")


def _fetch_subreddit(
    client: ArcticShiftClient,
    sub: str,
    window: tuple[int, int],
    work: Path,
    state: _State,
    result: MonthResult,
) -> None:
    start, end = window
    st = state.sub(sub)
    posts_file = work / f"{sub}.ndjson.part"
    seen = {json.loads(line)["id"] for line in _read_part(posts_file)}
    cursor = st["cursor"] if st["cursor"] is not None else start - 1
    size = client.cfg.page_size
    with open(posts_file, "ab") as out:
        while not st["done"]:
            page = client.search(
                {"subreddit": sub, "after": cursor, "before": end, "limit": size, "sort": "asc"}
            )
            result.pages += 1
            lines = []
            newest = None
            for post in page:
                created = _created(post) if isinstance(post, dict) else None
                pid = post.get("id") if isinstance(post, dict) else None
                if created is None or not isinstance(pid, str) or not pid:
                    result.skipped_records += 1
                    continue
                newest = created if newest is None else max(newest, created)
                if pid in seen:
                    continue  # the repeated second of a page boundary
                if not start <= created < end:
                    result.skipped_records += 1  # an inclusive `after` or `before` edge
                    continue
                seen.add(pid)
                lines.append(_canonical(post) + b"\n")
            out.write(b"".join(lines))
            out.flush()
            os.fsync(out.fileno())
            st["pages"] += 1
            if len(page) < size:
                st["done"] = True
            else:
                if newest is None or newest - 1 <= cursor:
                    raise ArcticShiftError(
                        f"Arctic Shift: more than {size} posts of r/{sub} in the second after "
                        f"{cursor}: paging by created_utc cannot get past them"
                    )
                cursor = st["cursor"] = newest - 1
            state.save()


class _Key(msgspec.Struct):
    id: str
    created_utc: Any = None


_KEY_DECODER = msgspec.json.Decoder(_Key)


def _keyed(path: Path) -> Iterator[tuple[int, str, bytes]]:
    """(created_utc, id, line) of a posts file; only the two fields are decoded."""
    for line in _read_part(path):
        try:
            key = _KEY_DECODER.decode(line)
        except msgspec.DecodeError:  # msgspec refuses lone surrogate escapes; json does not
            post = json.loads(line)
            yield _created(post) or 0, post["id"], line
            continue
        yield _created({"created_utc": key.created_utc}) or 0, key.id, line


def _sorted_lines(path: Path) -> Iterator[bytes]:
    """A subreddit's posts by (created_utc, id). Pages come in created_utc order, so the file
    already is but for the order of ids within a second: one second's posts are held at a
    time. A server that broke the order costs a sort of the subreddit-month in memory."""
    if any(a[0] > b[0] for a, b in itertools.pairwise(_keyed(path))):
        yield from (line for _, _, line in sorted(_keyed(path)))
        return
    for _, group in itertools.groupby(_keyed(path), key=lambda k: k[0]):
        yield from (line for _, _, line in sorted(group))


def _write_dump(work: Path, subs: list[str], target: Path) -> int:
    """The month's dump from the subreddits' files, atomically; returns the posts written."""
    tmp = temp_path(target)
    n = 0
    try:
        with open(tmp, "wb") as raw:
            cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
            with cctx.stream_writer(raw, closefd=False) as writer:
                for sub in subs:
                    for line in _sorted_lines(work / f"{sub}.ndjson.part"):
                        writer.write(line + b"\n")
                        n += 1
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def fetch_month(
    client: ArcticShiftClient,
    month: str,
    subreddits: list[str],
    dump_dir: Path,
    out_dir: Path,
) -> MonthResult:
    """Fetch one month of `subreddits` into dump_dir/RS_YYYY-MM.zst (resuming a fetch cut
    short); raises ArcticShiftError when the API keeps failing."""
    target = Path(dump_dir) / dump_name(month)
    result = MonthResult(month, "cached", str(target))
    if target.is_file():
        return result
    result.status = "fetched"
    work = Path(out_dir) / WORK_DIR / f"RS_{month}"
    work.mkdir(parents=True, exist_ok=True)
    state = _State(work / "progress.state", month, client.cfg.base_url)
    result.resumed = state.resumed
    if not state.resumed:
        for stale in work.glob("*.ndjson.part"):  # from another server, or a lost state file
            stale.unlink()
    requests0, retries0, waits0 = (
        client.stats.requests,
        client.stats.retries,
        len(client.stats.waits),
    )
    subs = sorted(set(subreddits))
    try:
        for sub in subs:
            _fetch_subreddit(client, sub, month_window(month), work, state, result)
    finally:
        result.requests = client.stats.requests - requests0
        result.retries = client.stats.retries - retries0
        result.waits = client.stats.waits[waits0:]
    target.parent.mkdir(parents=True, exist_ok=True)
    result.posts = _write_dump(work, subs, target)
    summary = asdict(result) | {"subreddits": subs, "base_url": client.cfg.base_url}
    atomic_write_json(Path(out_dir) / SUMMARY_DIR / f"RS_{month}.json", summary)
    shutil.rmtree(work)
    log.info("arctic shift %s: %d posts, %d pages -> %s", month, result.posts, result.pages, target)
    return result


def fetch_configured(
    cfg: HarvestConfig,
    out_dir: Path,
    months: list[str] | None = None,
    now: float | None = None,
    client: ArcticShiftClient | None = None,
) -> list[MonthResult]:
    """Every month a run should have (`months`, else harvest.arctic_shift's), fetched unless a
    dump of it exists (in harvest.inputs or the dump folder) or it has not settled. A month that
    fails is a result with status `failed` and its error; the others go on."""
    acfg = cfg.arctic_shift
    dump_dir = dump_dir_of(cfg, out_dir)
    results = []
    for month in sorted(set(months)) if months else settled_months(acfg, now):
        own = dump_dir / dump_name(month)
        found = existing_dump(month, [*cfg.inputs, dump_dir])
        fetched_before = (Path(out_dir) / SUMMARY_DIR / f"RS_{month}.json").is_file()
        if found is not None and (found.resolve() != own.resolve() or not fetched_before):
            results.append(MonthResult(month, "has_dump", str(found)))
            continue
        if not own.is_file() and not is_settled(month, acfg, now):
            results.append(
                MonthResult(
                    month,
                    "unsettled",
                    error=f"{month} ended less than {acfg.settle_hours:g} h ago: "
                    "scores have not settled",
                )
            )
            continue
        client = client or ArcticShiftClient(acfg)
        try:
            results.append(fetch_month(client, month, acfg.subreddits, dump_dir, out_dir))
        except ArcticShiftError as err:
            log.error("arctic shift %s: %s", month, err)
            results.append(MonthResult(month, "failed", error=str(err)))
    return results
