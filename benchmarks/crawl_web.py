"""The realistic benchmark web of benchmarks/crawl_realistic.py: thousands of named hosts on
one 127.0.0.1 port, a DNS table with slow and dead names, and a resolver that reads it.

- `make_web(spec)`: the hosts (Zipf-Mandelbrot links per host, most-linked host dead), their
  DNS answers and delays, and the links.
- `python benchmarks/crawl_web.py --serve WEB.json`: the server. asyncio, one process; hosts
  are told apart by the Host header, every response (robots.txt too) waits a latency drawn
  from a log-normal, dead hosts accept, read the request and never answer. It records what a
  politeness audit needs: requests in flight per host (the most it ever saw), in flight in
  total over time, requests by kind. `GET /__stats__` returns them as JSON.
- `BenchResolver`: the crawl's own GuardedResolver (cache, timeout, address guard, reactor
  thread pool), with the blocking `gethostbyname` swapped for a lookup in the DNS table that
  sleeps the name's delay in that thread, as a slow resolver would. Chosen in the crawl
  subprocess through `WEBTEXT_DNS_RESOLVER`; unknown names fail, so nothing reaches the
  internet.

Pages are the real HTML of ../shared/data/extraction/scrapinghub (181 news pages, median
115 KB), served gzip-compressed to clients that accept it, as real servers do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import json
import math
import os
import random
import socket
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # also when run as a script (--serve)

from tests.crawl_server import read_request

PAGES_DIR = REPO.parent / "shared" / "data" / "extraction" / "scrapinghub" / "html"
DNS_ENV = "WEBTEXT_BENCH_DNS"
ROBOTS = b"User-agent: *\nDisallow: /private/\n"
_NORMAL = statistics.NormalDist()


@dataclass
class WebSpec:
    hosts: int = 10_000
    links: int = 40_000
    # Links of the host of rank k ~ 1/(k + zipf_q)^zipf_s: with q = 20 over 10,000 hosts the
    # most-linked host has 0.77% of the links, about a top news site's share of WebText's.
    zipf_s: float = 1.0
    zipf_q: float = 20.0
    dead_frac: float = 0.01  # accept and hang; the most-linked host is always one of them
    nxdomain_frac: float = 0.01  # names that no longer resolve
    slow_dns_frac: float = 0.05  # lookups of 0.3-3 s
    hung_dns_frac: float = 0.003  # lookups that answer after 30 s (beyond the DNS timeout)
    dns_delay: float = 0.002  # every other lookup
    latency_median: float = 0.4
    latency_sigma: float = 1.0  # log-normal: p99 = median * e^(2.326 sigma) = 4.1 s
    private_frac: float = 0.01  # links under /private/ (robots.txt disallows them)
    missing_frac: float = 0.03  # links that answer 404
    seed: int = 7
    port: int = 0


@dataclass
class Web:
    spec: WebSpec
    hosts: list[str]
    links_per_host: list[int]
    dead: set[str]
    dns: dict[str, tuple[str | None, float]] = field(default_factory=dict)

    def links(self) -> list[str]:
        out = []
        for rank, (host, n) in enumerate(zip(self.hosts, self.links_per_host, strict=True)):
            rng = random.Random(f"{self.spec.seed}:{rank}")
            for i in range(n):
                r = rng.random()
                if r < self.spec.private_frac:
                    path = f"/private/{i}.html"
                elif r < self.spec.private_frac + self.spec.missing_frac:
                    path = f"/missing/{i}.html"
                else:
                    path = f"/{2017 - i % 3}/{i // 7:02d}/story-{rng.getrandbits(40):x}.html"
                out.append(f"http://{host}:{self.spec.port}{path}")
        return out


def zipf_counts(spec: WebSpec) -> list[int]:
    weights = [1.0 / (k + spec.zipf_q) ** spec.zipf_s for k in range(1, spec.hosts + 1)]
    total = sum(weights)
    counts = [max(1, math.floor(spec.links * w / total)) for w in weights]
    # Hand out what flooring left, largest remainders first, so the total is exact.
    short = spec.links - sum(counts)
    order = sorted(range(spec.hosts), key=lambda k: -(spec.links * weights[k] / total % 1))
    for k in order[: max(0, short)]:
        counts[k] += 1
    return counts


def make_web(spec: WebSpec) -> Web:
    rng = random.Random(spec.seed)
    hosts = [f"www.news{k:05d}.test" for k in range(spec.hosts)]
    counts = zipf_counts(spec)
    ranks = list(range(1, spec.hosts))
    rng.shuffle(ranks)
    n_dead = max(1, round(spec.hosts * spec.dead_frac))
    dead = {hosts[0]} | {hosts[k] for k in ranks[: n_dead - 1]}
    rest = ranks[n_dead - 1 :]
    n_nx = round(spec.hosts * spec.nxdomain_frac)
    n_slow = round(spec.hosts * spec.slow_dns_frac)
    n_hung = round(spec.hosts * spec.hung_dns_frac)
    nx = {hosts[k] for k in rest[:n_nx]}
    slow = {hosts[k] for k in rest[n_nx : n_nx + n_slow]}
    hung = {hosts[k] for k in rest[n_nx + n_slow : n_nx + n_slow + n_hung]}
    dns: dict[str, tuple[str | None, float]] = {}
    for h in hosts:
        if h in nx:
            dns[h] = (None, spec.dns_delay)
        elif h in hung:
            dns[h] = ("127.0.0.1", 30.0)
        elif h in slow:
            dns[h] = ("127.0.0.1", round(rng.uniform(0.3, 3.0), 3))
        else:
            dns[h] = ("127.0.0.1", spec.dns_delay)
    return Web(spec, hosts, counts, dead, dns)


# -- the resolver (runs inside the crawl subprocess) -------------------------------------------
def _load_table() -> dict[str, list[Any]]:
    path = os.environ.get(DNS_ENV)
    if not path:
        raise RuntimeError(f"BenchResolver needs {DNS_ENV} (a DNS table written by the benchmark)")
    table: dict[str, list[Any]] = json.loads(Path(path).read_text())
    return table


def _make_resolver() -> Any:
    from twisted.internet import threads
    from twisted.internet.base import ThreadedResolver

    from pipeline.crawl.guard import GuardedResolver

    table = _load_table()

    def lookup(name: str) -> str:
        address, delay = table.get(name.lower().rstrip("."), (None, 0.002))
        time.sleep(delay)  # in a reactor pool thread, like a blocking getaddrinfo
        if address is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return str(address)

    class TableLookup(ThreadedResolver):
        """Twisted's ThreadedResolver.getHostByName with `lookup` for socket.gethostbyname."""

        def getHostByName(self, name: str, timeout: Any = (1, 3, 11, 45)) -> Any:
            from twisted.internet.defer import Deferred

            delay = sum(timeout) if timeout else 60
            user: Deferred[str] = Deferred()
            pool = self.reactor.getThreadPool()  # type: ignore[attr-defined]
            d = threads.deferToThreadPool(self.reactor, pool, lookup, name)  # type: ignore[arg-type]
            cancel = self.reactor.callLater(delay, self._cleanup, name, d)  # type: ignore[attr-defined]
            self._runningQueries[d] = (user, cancel)
            d.addBoth(self._checkTimeout, name, d)
            return user

    # MRO: GuardedResolver -> CachingThreadedResolver -> TableLookup -> ThreadedResolver, so the
    # guard and the cache run exactly as in a real crawl and only the lookup itself differs.
    class BenchResolver(GuardedResolver, TableLookup):
        pass

    return BenchResolver


def __getattr__(name: str) -> Any:
    # Built on first use: importing this module (the benchmark does) must not import Twisted.
    if name == "BenchResolver":
        cls = _make_resolver()
        globals()["BenchResolver"] = cls
        return cls
    raise AttributeError(name)


# -- the server --------------------------------------------------------------------------------
def _uniform(*parts: object) -> float:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2**64


class BenchServer:
    def __init__(self, spec: WebSpec, dead: set[str], pages: list[bytes]):
        self.spec = spec
        self.dead = dead
        self.pages = pages
        self.gz = [gzip.compress(p, 6) for p in pages]
        self.inflight = 0
        self.inflight_host: Counter[str] = Counter()
        self.max_host: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()  # by kind
        self.attempts_dead: Counter[str] = Counter()
        self.busy_seconds: Counter[str] = Counter()  # request-seconds by kind
        self.drawn_seconds: Counter[str] = Counter()  # the latencies drawn, by kind
        self.samples: list[tuple[float, int]] = []
        self.bytes_sent = 0
        self.connections = 0
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()
        self.seen_hosts: set[str] = set()
        self.attempt: Counter[tuple[str, str]] = Counter()

    def latency(self, host: str, path: str) -> float:
        n = self.attempt[(host, path)]
        self.attempt[(host, path)] += 1
        z = _NORMAL.inv_cdf(_uniform(self.spec.seed, host, path, n))
        return self.spec.latency_median * math.exp(self.spec.latency_sigma * z)

    async def sample(self, every: float = 0.25) -> None:
        while True:
            self.samples.append((round(time.monotonic() - self.t0, 2), self.inflight))
            await asyncio.sleep(every)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "max_per_host": max(self.max_host.values(), default=0),
            "max_per_host_hist": dict(Counter(self.max_host.values())),
            "hosts_seen": len(self.seen_hosts),
            "dead_attempts_max": max(self.attempts_dead.values(), default=0),
            "dead_attempts_total": sum(self.attempts_dead.values()),
            "dead_hosts_tried": len(self.attempts_dead),
            "busy_seconds": {k: round(v, 1) for k, v in self.busy_seconds.items()},
            "drawn_seconds": {k: round(v, 1) for k, v in self.drawn_seconds.items()},
            "samples": self.samples,
            "bytes_sent": self.bytes_sent,
            "connections": self.connections,
            "server_cpu_s": round(time.process_time() - self.cpu0, 2),
        }

    def reset(self) -> None:
        self.__init__(self.spec, self.dead, self.pages)  # type: ignore[misc]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while (request := await read_request(reader)) is not None:
                _method, target, headers = request
                host = headers.get("host", "").rsplit(":", 1)[0].lower()
                if target == "/__stats__":
                    await self._reply(writer, 200, json.dumps(self.stats()).encode(), "json")
                    continue
                if target == "/__reset__":
                    self.reset()
                    await self._reply(writer, 200, b"{}", "json")
                    continue
                if not await self._request(host, target, headers, reader, writer):
                    return
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _request(
        self,
        host: str,
        path: str,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Serve one request; False when the connection is done with."""
        dead = host in self.dead
        kind = "dead" if dead else "robots" if path == "/robots.txt" else "page"
        self.seen_hosts.add(host)
        self.requests[kind] += 1
        self.inflight += 1
        self.inflight_host[host] += 1
        self.max_host[host] = max(self.max_host[host], self.inflight_host[host])
        t = time.monotonic()
        try:
            if dead:
                self.attempts_dead[host] += 1
                with contextlib.suppress(ConnectionError):
                    while await reader.read(4096):  # hang until the client gives up
                        pass
                return False
            # A client that gives up (timeout) closes the connection: from then on the request
            # is no longer in flight, even though its answer would still be on its way.
            gone = asyncio.ensure_future(reader.read(1))
            wait = self.latency(host, path)
            self.drawn_seconds[kind] += wait
            done, _ = await asyncio.wait({gone}, timeout=wait)
            if done:
                gone.exception()  # retrieved: a reset is how a client that gave up may close
                return False
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone
        finally:
            self.inflight -= 1
            self.inflight_host[host] -= 1
            self.busy_seconds[kind] += time.monotonic() - t
        if path == "/robots.txt":
            await self._reply(writer, 200, ROBOTS, "text/plain")
        elif path.startswith("/missing/"):
            self.requests["404"] += 1
            await self._reply(writer, 404, b"<html><body><h1>Not found</h1></body></html>", "html")
        else:
            i = int(_uniform("page", host, path) * len(self.pages))
            gz = "gzip" in headers.get("accept-encoding", "")
            await self._reply(writer, 200, self.gz[i] if gz else self.pages[i], "html", gz)
        return headers.get("connection", "").lower() != "close"

    async def _reply(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        kind: str,
        gz: bool = False,
    ) -> None:
        ctype = {
            "html": "text/html; charset=utf-8",
            "json": "application/json",
            "text/plain": "text/plain",
        }[kind]
        head = [
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}",
            f"Content-Type: {ctype}",
            f"Content-Length: {len(body)}",
            "Server: bench-web",
        ]
        if gz:
            head.append("Content-Encoding: gzip")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        self.bytes_sent += len(body)
        await writer.drain()


def load_pages(limit: int | None = None) -> list[bytes]:
    paths = sorted(PAGES_DIR.glob("*.html.gz"))[:limit]
    if not paths:
        raise SystemExit(f"no pages under {PAGES_DIR}")
    return [gzip.decompress(p.read_bytes()) for p in paths]


def serve_main(spec_path: Path) -> None:
    data = json.loads(spec_path.read_text())
    spec = WebSpec(**data["spec"])
    server = BenchServer(spec, set(data["dead"]), load_pages())

    async def run() -> None:
        srv = await asyncio.start_server(server.serve, "127.0.0.1", spec.port, backlog=4096)
        print(json.dumps({"port": srv.sockets[0].getsockname()[1]}), flush=True)
        asyncio.get_running_loop().create_task(server.sample())
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def write_spec(path: Path, web: Web) -> None:
    path.write_text(json.dumps({"spec": asdict(web.spec), "dead": sorted(web.dead)}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", type=Path, required=True, help="web spec JSON (write_spec)")
    sys.exit(serve_main(ap.parse_args().serve))
