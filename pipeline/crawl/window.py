"""How many links one crawl process has out at once: a window paced by its loop's lag and idle CPU.

When every core is busy, a crawl process with more requests out than it can process only
queues the answers, in its sockets and in Scrapy's queues. Throughput stays the same (the cores
are the limit), but every answer waits longer before the spider sees it, and a large site, which
has at most `crawl.concurrent_per_domain` requests out, goes that much slower: on the benchmark
web the largest sites took 2-3 s per round trip in the busy first minute against 0.7 s later,
and they decided when the crawl ended.

The window shrinks (x 0.75, at most once per HOLD seconds) while the process's event loop runs
more than `target` late, or while the machine has less than `min_idle` of its CPU time idle
(queueing for cores starts before every core is busy all the time), and grows back while
neither holds and the window is what holds links back. Links that do go out are the feeder's
first: the sites with the most work left. The floor and the growth scale by the part's weight,
its share of the machine's crawl work (pipeline/crawl/share.py). The spider feeds it the
loop's lateness and the machine's idle share (MachineIdle) and asks it before each hand-out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# The window never goes below this (nor above crawl.concurrent_requests): links to hosts that
# hang hold their place for a whole timeout, and must not take every place a part has. A part
# weighed by its share of the work (pipeline/crawl/share.py) has this times its weight, and
# never less than MIN_FLOOR.
MIN_WINDOW = 16
MIN_FLOOR = 4
# How often the spider measures its event loop's lateness, and how long a decrease is given to
# show before the next one (answers queued before it still have to drain).
TICK = 0.1
HOLD = 1.0
DECREASE = 0.75
# Lateness and idle share are moving averages (weight of the newest tick): one late tick (one
# large page decoded in one go) counts half, not as a busy machine.
SMOOTHING = 0.5

# The window's figures in a crawl part's summary and stats.
WINDOW_STATS = (
    "window_mean",
    "window_min",
    "window_max",
    "window_decreases",
    "loop_lag_mean_s",
    "loop_lag_max_s",
    "late_ticks_share",
    "cpu_idle_mean",
    "weight_mean",
)


@dataclass
class LagWindow:
    target: float
    ceiling: int
    limit: int = 0
    min_idle: float = 0.0
    weight: float = 1.0
    lag: float = 0.0
    idle: float = 1.0
    _last_decrease: float = float("-inf")
    _held_back: bool = False
    _credit: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ceiling = max(1, self.ceiling)
        self.limit = min(max(self.limit or self.floor, self.floor), self.ceiling)
        self.stats = {
            "ticks": 0,
            "late_ticks": 0,
            "lag_max": 0.0,
            "lag_sum": 0.0,
            "limit_sum": 0.0,
            "limit_min": float(self.limit),
            "limit_max": float(self.limit),
            "decreases": 0,
            "idle_sum": 0.0,
            "idle_ticks": 0,
            "weight_sum": 0.0,
        }

    @property
    def floor(self) -> int:
        return min(max(MIN_FLOOR, round(MIN_WINDOW * self.weight)), self.ceiling)

    def set_weight(self, weight: float) -> None:
        """This part's share of the machine relative to the others' (1: an equal share): the
        floor and the growth scale by it."""
        self.weight = weight
        self.limit = max(self.limit, self.floor)

    def admits(self, out: int) -> bool:
        """May another link go out while `out` are out and not done?"""
        if out < self.limit:
            return True
        self._held_back = True
        return False

    def observe(self, lateness: float, now: float, idle: float | None = None) -> None:
        """One tick: the loop ran `lateness` seconds late at time `now` (monotonic), and the
        machine's CPU was `idle` (a share; None: not known) since the last tick."""
        self.lag = SMOOTHING * max(0.0, lateness) + (1 - SMOOTHING) * self.lag
        if idle is not None:
            self.idle = SMOOTHING * idle + (1 - SMOOTHING) * self.idle
            self.stats["idle_sum"] += idle
            self.stats["idle_ticks"] += 1
        busy = idle is not None and self.idle < self.min_idle
        # Between min_idle and twice that the window holds: growing there would only make
        # the next tick's decrease.
        roomy = idle is None or self.idle >= 2 * self.min_idle
        held_back, self._held_back = self._held_back, False
        if self.lag > self.target or busy:
            lower = max(self.floor, int(self.limit * DECREASE))
            if lower < self.limit and now - self._last_decrease >= HOLD:
                self.limit = lower
                self._last_decrease = now
                self.stats["decreases"] += 1
        elif held_back and roomy:
            # Far below the target the window doubles in ~0.6 s (a part that starts alone on
            # a machine reaches the ceiling in seconds); near it, `weight` more links per tick
            # (a fraction carried over), so the parts' shares follow their weights.
            if self.lag < self.target / 2:
                step = max(1, int(self.limit * self.weight / 8))
            else:
                self._credit += self.weight
                step, self._credit = int(self._credit), self._credit % 1
            self.limit = min(self.ceiling, self.limit + step)
        s = self.stats
        s["ticks"] += 1
        s["late_ticks"] += self.lag > self.target
        s["lag_max"] = max(s["lag_max"], lateness)
        s["lag_sum"] += lateness
        s["limit_sum"] += self.limit
        s["weight_sum"] += self.weight
        s["limit_min"] = min(s["limit_min"], self.limit)
        s["limit_max"] = max(s["limit_max"], self.limit)

    def summary(self) -> dict[str, float | None]:
        s = self.stats
        n = max(1, int(s["ticks"]))
        return {
            "window_mean": round(s["limit_sum"] / n, 1),
            "window_min": int(s["limit_min"]),
            "window_max": int(s["limit_max"]),
            "window_decreases": int(s["decreases"]),
            "loop_lag_mean_s": round(s["lag_sum"] / n, 4),
            "loop_lag_max_s": round(s["lag_max"], 3),
            "late_ticks_share": round(s["late_ticks"] / n, 3),
            "cpu_idle_mean": round(s["idle_sum"] / s["idle_ticks"], 3) if s["idle_ticks"] else None,
            "weight_mean": round(s["weight_sum"] / s["ticks"] if s["ticks"] else self.weight, 2),
        }


class MachineIdle:
    """The share of the machine's CPU time spent idle since the last reading (/proc/stat; None
    where there is none, or before a second reading). Machine-wide: in a container it is the
    host's, and other jobs on the machine count too (see crawl.min_cpu_idle in README.md)."""

    def __init__(self, path: Path = Path("/proc/stat")):
        self.path = path
        self._last: tuple[int, int] | None = None

    def read(self) -> float | None:
        try:
            with self.path.open("rb") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        if len(fields) < 5:
            return None
        now = (fields[3] + fields[4], sum(fields[:8]))  # idle + iowait; user .. steal
        last, self._last = self._last, now
        if last is None or now[1] <= last[1]:
            return None
        return (now[0] - last[0]) / (now[1] - last[1])
