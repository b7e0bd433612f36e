"""Where a request may go: http/https only, and only to public addresses.

A URL list can point anywhere, including a cloud metadata service or a worker's own network.
Names are checked after resolution, in the resolver the HTTP client connects with (so a name
cannot resolve to one address for the check and another for the connection), and literal IPs
before each request and each redirect hop. Private, loopback, link-local, multicast, reserved
and other non-global addresses are refused unless allowed by flag.
"""
from __future__ import annotations

import ipaddress
import socket

from aiohttp.resolver import ThreadedResolver
from yarl import URL

from curate.download.failures import Refused
from curate.download.options import ALLOW_ALL

SCHEMES = ("http", "https")


class AddressPolicy:
    def __init__(self, allow: tuple[str, ...] = ()):
        self.allow_all = ALLOW_ALL in allow
        self.networks = [ipaddress.ip_network(n) for n in allow if n != ALLOW_ALL]

    def allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_global and not ip.is_multicast:
            return True
        return self.allow_all or any(ip in network for network in self.networks)

    def check_url(self, url: str | URL) -> URL:
        """The parsed URL if it may be requested; Refused otherwise (before any connection)."""
        parsed = url if isinstance(url, URL) else URL(url)
        if parsed.scheme not in SCHEMES:
            raise Refused("unsupported_scheme", f"scheme {parsed.scheme!r} is not http or https")
        if not parsed.host:
            raise Refused("invalid_url", "no host")
        try:
            literal = ipaddress.ip_address(parsed.host.split("%", 1)[0])
        except ValueError:
            return parsed  # a name: checked when resolved
        if not self.allowed(str(literal)):
            raise Refused("private_address", f"{parsed.host} is not a public address")
        return parsed


class GuardedResolver(ThreadedResolver):
    """aiohttp's resolver, keeping only allowed addresses; none left -> Refused(private_address)."""

    def __init__(self, policy: AddressPolicy):
        super().__init__()
        self.policy = policy

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        results = await super().resolve(host, port, family)
        allowed = [r for r in results if self.policy.allowed(r["host"])]
        if not allowed:
            raise Refused("private_address", f"{host} resolves to {results[0]['host'] if results else 'nothing'}, "
                                             "not a public address")
        return allowed
