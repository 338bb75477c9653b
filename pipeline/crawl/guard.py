"""SSRF guard: which hosts and addresses the crawler may connect to.

A link from Reddit can point anywhere, including at the crawler's own network (cloud metadata
at 169.254.169.254, an admin panel on 10.x, localhost). The guard refuses every address that is
not globally routable unless its host name is listed in `crawl.allow_hosts`. It runs twice:
on IP literals before a request is scheduled (no connection at all), and inside the DNS
resolver on the address the connection will actually use, so a name that resolves (or
re-resolves, DNS rebinding) to a private address is refused at connect time. Redirects are new
requests, so both checks apply after every hop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from scrapy.resolver import CachingThreadedResolver
from twisted.internet.error import DNSLookupError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names the resolver refused in this process, with the address they resolved to. The crawl
# runs one spider per subprocess, so a process-wide table is the crawl's table; Twisted turns
# any resolver failure into a plain "no results" error, so the errback looks here to tell a
# refusal from a DNS failure.
BLOCKED_NAMES: dict[str, str] = {}


class BlockedAddressError(DNSLookupError):
    """The name resolved to an address the guard refuses."""


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(normalize_host(host))
    except ValueError:
        return None


def is_forbidden_ip(ip: IPAddress) -> bool:
    """True for loopback, private, link-local, multicast, reserved, unspecified, shared (CGNAT)
    and documentation ranges: everything that is not a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_forbidden_ip(mapped)
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


class HostPolicy:
    """allow_hosts entries are exact host names or IP literals; `.example.test` also allows
    every subdomain of example.test (and example.test itself)."""

    def __init__(self, allow_hosts: Iterable[str] = (), proxy: str | None = None):
        self.exact: set[str] = set()
        self.suffixes: tuple[str, ...] = ()
        suffixes = []
        for entry in allow_hosts:
            h = normalize_host(entry)
            if not h:
                continue
            if h.startswith("."):
                suffixes.append(h)
                self.exact.add(h[1:])
            else:
                self.exact.add(h)
        self.suffixes = tuple(sorted(suffixes))
        # The operator chose the proxy; connecting to it is never an SSRF.
        self.proxy_host = normalize_host(urlsplit(proxy).hostname or "") if proxy else None

    def allowed(self, host: str) -> bool:
        h = normalize_host(host)
        return h in self.exact or (bool(self.suffixes) and h.endswith(self.suffixes))

    def may_connect(self, host: str) -> bool:
        return self.allowed(host) or (
            self.proxy_host is not None and normalize_host(host) == self.proxy_host
        )

    def refuse_literal(self, host: str) -> bool:
        """An IP-literal host that the guard refuses without any lookup."""
        if self.allowed(host):
            return False
        ip = parse_ip(host)
        return ip is not None and is_forbidden_ip(ip)

    def refuse_resolved(self, host: str, address: str) -> bool:
        if self.may_connect(host):
            return False
        ip = parse_ip(address)
        return ip is None or is_forbidden_ip(ip)


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, refusing names whose address the guard forbids. The check is
    on the very address the connection uses (the cached answer), so there is no window between
    check and connect."""

    policy: HostPolicy

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        obj = super().from_crawler(crawler, reactor)
        s = crawler.settings
        obj.policy = HostPolicy(s.getlist("WEBTEXT_ALLOW_HOSTS"), s.get("WEBTEXT_PROXY") or None)
        return obj

    def getHostByName(self, name: str, timeout: Any = ()) -> Any:
        d = super().getHostByName(name, timeout)
        d.addCallback(self._check, name)
        return d

    def _check(self, address: str, name: str) -> str:
        if self.policy.refuse_resolved(name, address):
            BLOCKED_NAMES[normalize_host(name)] = address
            raise BlockedAddressError(f"{name} resolves to forbidden address {address}")
        return address
