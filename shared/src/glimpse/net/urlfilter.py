"""Which URLs the service may fetch on a user's behalf (web-download, http locations).

Glance's `[import_filtering_opts]` lists decide schemes, hosts and ports: a non-empty allow
list wins, otherwise the deny list applies. On top of that, names are resolved here and every
address must be globally routable (`ipaddress`'s `is_global`, and not multicast): private
(RFC 1918), loopback, link-local (the cloud metadata service), shared (CGNAT, 100.64.0.0/10),
unique-local (fc00::/7), documentation, benchmarking, unspecified and reserved addresses are
refused unless the host is allow-listed by name or address. An IPv6 address that carries an
IPv4 one (IPv4-mapped, IPv4-compatible, 6to4, NAT64) is judged by that IPv4 address too, since
that is where a packet to it may end up. Hosts written as numbers in odd notations (decimal,
octal, hex, short forms) are refused outright, because libraries disagree on what they mean.
The caller connects to the addresses returned, so a second DNS answer cannot swap in a private
address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from glimpse.config.import_options import ImportFilteringOptions
from glimpse.domain.errors import InvalidInput

DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ftp": 21}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Resolves (host, port) to addresses as text; the system's resolver unless a caller says.
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Prefixes whose last 32 bits are an IPv4 address a packet may be translated to.
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052, the well-known prefix
_IPV4_COMPATIBLE: Final = ipaddress.ip_network("::/96")  # deprecated, but still parsed
# RFC 8215's local-use NAT64 prefix: the IPv4 address may sit anywhere in it, and it only
# ever leads into the operator's own network.
_LOCAL_NAT64: Final = ipaddress.ip_network("64:ff9b:1::/48")
# IANA special-purpose blocks that older Pythons' is_global still counts as global.
_NOT_GLOBAL: Final = (
    _LOCAL_NAT64,
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("192.88.99.0/24"),  # the retired 6to4 relay anycast
    ipaddress.ip_network("3fff::/20"),  # documentation (RFC 9637)
    ipaddress.ip_network("5f00::/16"),  # SRv6 SIDs (RFC 9602)
)


class URLRefused(InvalidInput):
    """The URL does not pass the filter; the message says why, without resolving details."""


@dataclass(frozen=True, slots=True)
class CheckedURL:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _allowed(value: object, allowed: list[object], denied: list[object]) -> bool:
    if allowed:
        return value in allowed
    return value not in denied


def _is_numeric_label(label: str) -> bool:
    text = label.lower()
    try:
        if text.startswith("0x"):
            int(text, 16)
        elif len(text) > 1 and text.startswith("0"):
            int(text, 8)
        else:
            int(text, 10)
    except ValueError:
        return False
    return True


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _oddly_numeric(host: str) -> bool:
    """True for hosts like 2130706433, 0x7f.1 or 0177.0.0.1 that are not canonical IPs."""
    labels = host.split(".")
    return all(labels) and all(_is_numeric_label(label) for label in labels)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64, IPv4-compatible)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether `address` is globally routable, as is any IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            # 6to4 is itself a global prefix; mapped, compatible and NAT64 forms are not, so
            # the IPv4 address alone decides for them.
            if address.sixtofour is not None and not _global(address):
                return False
            return _global(embedded)
    return _global(address)


def _global(address: IPAddress) -> bool:
    # is_global leaves multicast in; reserved IPv6 space is unassigned, so never a server.
    if not address.is_global or address.is_multicast or address.is_reserved:
        return False
    return not any(address in network for network in _NOT_GLOBAL)


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system's resolver gives for `host` (TCP)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class URLFilter:
    def __init__(self, options: ImportFilteringOptions, resolver: Resolver | None = None) -> None:
        self.options = options
        self.resolver = resolver

    def _allow_listed(self, host: str, address: IPAddress | None = None) -> bool:
        allowed = self.options.allowed_hosts
        return host in allowed or (address is not None and str(address) in allowed)

    def check_syntax(self, url: str) -> tuple[str, str, int]:
        """Scheme, host and port of `url` if the lists allow them (no name resolution)."""
        options = self.options
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise URLRefused(f"URI does not pass filtering: {url}") from None
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if not _allowed(scheme, list(options.allowed_schemes), list(options.disallowed_schemes)):
            raise URLRefused(f"URI scheme {scheme or '(none)'} is not allowed: {url}")
        if not host:
            raise URLRefused(f"URI has no host: {url}")
        if _literal(host) is None and _oddly_numeric(host):
            raise URLRefused(f"URI host is a numeric-encoded address: {url}")
        if not _allowed(host, list(options.allowed_hosts), list(options.disallowed_hosts)):
            raise URLRefused(f"URI host {host} is not allowed: {url}")
        if port is None:
            port = DEFAULT_PORTS.get(scheme, 0)
        if not _allowed(port, list(options.allowed_ports), list(options.disallowed_ports)):
            raise URLRefused(f"URI port {port} is not allowed: {url}")
        return scheme, host, port

    def check_unresolved(self, url: str) -> tuple[str, str, int]:
        """`check_syntax`, and a host written as an address must be public: for a request
        sent through a proxy, which resolves names itself."""
        scheme, host, port = self.check_syntax(url)
        self._check_address(url, host, _literal(host))
        return scheme, host, port

    def _check_address(self, url: str, host: str, address: IPAddress | None) -> None:
        if address is not None and not self._allow_listed(host, address) and not is_public(address):
            raise URLRefused(f"URI host {host} is not a public address: {url}")

    async def check(self, url: str) -> CheckedURL:
        """Check `url` and resolve its host; every address must pass."""
        scheme, host, port = self.check_syntax(url)
        literal = _literal(host)
        addresses: list[IPAddress] = []
        if literal is not None:
            addresses = [literal]
        else:
            resolve = self.resolver or system_resolver
            try:
                answers = await resolve(host, port)
                for answer in dict.fromkeys(answers):
                    addresses.append(ipaddress.ip_address(answer))
            except (OSError, ValueError):
                raise URLRefused(f"URI host {host} cannot be resolved: {url}") from None
            if not addresses:
                raise URLRefused(f"URI host {host} cannot be resolved: {url}")
        for address in addresses:
            self._check_address(url, host, address)
        return CheckedURL(url, scheme, host, port, tuple(str(a) for a in addresses))
