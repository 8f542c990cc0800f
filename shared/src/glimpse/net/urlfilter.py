"""Which URLs the service may fetch on a user's behalf (web-download, http locations).

Glance's `[import_filtering_opts]` lists decide schemes, hosts and ports: a non-empty allow
list wins, otherwise the deny list applies. On top of that, names are resolved here and every
address must be public: loopback, link-local (the cloud metadata service), unspecified,
multicast and reserved addresses are refused unless the host is allow-listed by name or
address. Hosts written as numbers in odd notations (decimal, octal, hex, short forms) are
refused outright, because libraries disagree on what they mean. The caller connects to the
addresses returned, so a second DNS answer cannot swap in a private address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from glimpse.config.settings import ImportFilteringOptions
from glimpse.domain.errors import InvalidInput

DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ftp": 21}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Metadata services not covered by the link-local range (AWS's IPv6 endpoint).
_METADATA: Final = frozenset({ipaddress.ip_address("fd00:ec2::254")})


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


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or address in _METADATA
    )


class URLFilter:
    def __init__(self, options: ImportFilteringOptions) -> None:
        self.options = options

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

    async def check(self, url: str) -> CheckedURL:
        """Check `url` and resolve its host; every address must pass."""
        scheme, host, port = self.check_syntax(url)
        literal = _literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError:
                raise URLRefused(f"URI host {host} cannot be resolved: {url}") from None
            addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        allowed = self.options.allowed_hosts
        for address in addresses:
            if host not in allowed and str(address) not in allowed and not _public(address):
                raise URLRefused(f"URI host {host} is not a public address: {url}")
        return CheckedURL(url, scheme, host, port, tuple(str(a) for a in addresses))
