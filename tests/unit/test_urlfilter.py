"""The URL filter for fetches made on a user's behalf."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import pytest

from egress import StubResolver
from glimpse.config.import_options import ImportFilteringOptions
from glimpse.net.urlfilter import Resolver, URLFilter, URLRefused, is_public


def url_filter(resolver: Resolver | None = None, **options: Any) -> URLFilter:
    return URLFilter(ImportFilteringOptions(**options), resolver)


async def refusing_resolver(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host}:{port} was looked up")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/image", "scheme ftp"),
        ("file:///etc/passwd", "scheme file"),
        ("http:///image", "no host"),
        ("http://example.com:8080/image", "port 8080"),
        ("http://2130706433/image", "numeric-encoded"),
        ("http://0x7f.1/image", "numeric-encoded"),
        ("http://0177.0.0.1/image", "numeric-encoded"),
        ("http://127.1/image", "numeric-encoded"),
        ("http://example.com:99999/image", "does not pass"),
    ],
)
def test_syntax_refusals(url: str, reason: str) -> None:
    with pytest.raises(URLRefused, match=reason):
        url_filter().check_syntax(url)


def test_lists_follow_glance_precedence() -> None:
    assert url_filter().check_syntax("https://example.com/x") == ("https", "example.com", 443)
    only_ftp = url_filter(allowed_schemes="ftp", disallowed_schemes="ftp", allowed_ports="21")
    assert only_ftp.check_syntax("ftp://example.com/x")[0] == "ftp"
    denied = url_filter(disallowed_hosts="bad.example.com")
    with pytest.raises(URLRefused, match=r"host bad\.example\.com"):
        denied.check_syntax("http://bad.example.com/x")
    listed = url_filter(allowed_hosts="good.example.com")
    with pytest.raises(URLRefused, match=r"host other\.example\.com"):
        listed.check_syntax("http://other.example.com/x")
    any_port = url_filter(allowed_ports="", disallowed_ports="22")
    assert any_port.check_syntax("http://example.com:8080/x")[2] == 8080
    with pytest.raises(URLRefused, match="port 22"):
        any_port.check_syntax("http://example.com:22/x")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://[fd00:ec2::254]/x",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
    ],
)
async def test_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(URLRefused, match="not a public address"):
        await url_filter().check(url)


async def test_allow_listed_hosts_may_be_private() -> None:
    by_address = await url_filter(allowed_hosts="127.0.0.1").check("http://127.0.0.1/x")
    assert by_address.addresses == ("127.0.0.1",)
    by_name = await url_filter(allowed_hosts="localhost").check("http://localhost/x")
    assert by_name.host == "localhost"
    assert set(by_name.addresses) <= {"127.0.0.1", "::1"}
    assert by_name.port == 80


async def test_public_literal_passes_without_lookup() -> None:
    checked = await url_filter(resolver=refusing_resolver).check("https://93.184.215.14/i.qcow2")
    assert (checked.host, checked.port, checked.addresses) == (
        "93.184.215.14",
        443,
        ("93.184.215.14",),
    )


async def test_unresolvable_host_is_refused() -> None:
    with pytest.raises(URLRefused, match="cannot be resolved"):
        await url_filter().check("http://no-such-host.invalid/x")


# Every class of address that is not globally routable, as a name might resolve to it.
NOT_GLOBAL = {
    "rfc1918-10": "10.1.2.3",
    "rfc1918-172": "172.16.5.4",
    "rfc1918-192": "192.168.0.10",
    "loopback": "127.0.0.2",
    "link-local": "169.254.169.254",
    "cgnat": "100.64.0.1",
    "cgnat-top": "100.127.255.254",
    "this-network": "0.0.0.0",  # noqa: S104 -- an address a name may resolve to
    "ietf-protocol": "192.0.0.8",
    "documentation": "192.0.2.10",
    "benchmarking": "198.18.0.1",
    "multicast": "224.0.0.1",
    "reserved": "240.0.0.1",
    "broadcast": "255.255.255.255",
    "ipv6-loopback": "::1",
    "ipv6-unspecified": "::",
    "unique-local": "fc00::1",
    "unique-local-fd": "fd12:3456::1",
    "aws-metadata-v6": "fd00:ec2::254",
    "ipv6-link-local": "fe80::1",
    "ipv6-multicast": "ff0e::1",
    "ipv6-documentation": "2001:db8::1",
    "ipv6-documentation-new": "3fff::1",
    "6to4-relay-anycast": "192.88.99.1",
    "teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "ipv4-mapped-private": "::ffff:10.0.0.1",
    "ipv4-mapped-loopback": "::ffff:127.0.0.1",
    "ipv4-compatible-private": "::10.0.0.1",
    "6to4-private": "2002:a00:1::1",
    "6to4-loopback": "2002:7f00:1::",
    "6to4-cgnat": "2002:6440:1::",
    "nat64-private": "64:ff9b::192.168.1.1",
    "nat64-link-local": "64:ff9b::169.254.169.254",
    "nat64-local-use": "64:ff9b:1::5db8:d70e",
}
GLOBAL = {
    "ipv4": "93.184.215.14",
    "ipv6": "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    "nat64-public": "64:ff9b::93.184.215.14",
    "6to4-public": "2002:5db8:d70e::1",
    "ipv4-mapped-public": "::ffff:93.184.215.14",
}


@pytest.mark.parametrize("address", NOT_GLOBAL.values(), ids=NOT_GLOBAL.keys())
async def test_names_resolving_to_non_global_addresses_are_refused(address: str) -> None:
    resolver = StubResolver({"images.test": [[address]]})
    with pytest.raises(URLRefused, match=r"host images\.test is not a public address"):
        await url_filter(resolver).check("http://images.test/disk.raw")
    assert resolver.asked == ["images.test"]
    # Written as the URL's host, the same address is refused without a look-up.
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(URLRefused, match="not a public address"):
        await url_filter(refusing_resolver).check(f"http://{literal}/disk.raw")
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", GLOBAL.values(), ids=GLOBAL.keys())
async def test_names_resolving_to_global_addresses_pass(address: str) -> None:
    resolver = StubResolver({"images.test": [[address]]})
    checked = await url_filter(resolver).check("https://images.test/disk.raw")
    canonical = str(ipaddress.ip_address(address))
    assert (checked.host, checked.port, checked.addresses) == ("images.test", 443, (canonical,))


async def test_one_private_answer_among_public_ones_refuses_the_name() -> None:
    resolver = StubResolver({"images.test": [["93.184.215.14", "10.0.0.7", "93.184.215.14"]]})
    with pytest.raises(URLRefused, match="not a public address"):
        await url_filter(resolver).check("http://images.test/x")


async def test_no_answer_or_a_garbled_one_is_unresolvable() -> None:
    resolver = StubResolver({"empty.test": [[]], "garbled.test": [["not-an-address"]]})
    for host in ("empty.test", "garbled.test", "missing.test"):
        with pytest.raises(URLRefused, match="cannot be resolved"):
            await url_filter(resolver).check(f"http://{host}/x")


async def test_allowed_hosts_admit_private_addresses_by_name_or_address() -> None:
    resolver = StubResolver({"mirror.test": [["10.20.30.40"]], "other.test": [["10.20.30.41"]]})
    by_name = url_filter(resolver, allowed_hosts="mirror.test, other.test")
    assert (await by_name.check("http://mirror.test/x")).addresses == ("10.20.30.40",)
    by_address = url_filter(resolver, allowed_hosts="10.20.30.40, mirror.test, other.test")
    assert (await by_address.check("http://10.20.30.40/x")).addresses == ("10.20.30.40",)
    # Allow-listing a name does not admit the private addresses of other names.
    with pytest.raises(URLRefused):
        await url_filter(resolver, allowed_hosts="mirror.test").check("http://other.test/x")


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1/x", "http://[fc00::1]/x", "http://100.64.1.1/x", "http://[::ffff:a00:1]/x"],
)
def test_unresolved_check_refuses_private_literal_hosts(url: str) -> None:
    # What a request through a proxy gets: no look-up, but an address host is judged.
    with pytest.raises(URLRefused, match="not a public address"):
        url_filter(refusing_resolver).check_unresolved(url)
    assert url_filter(refusing_resolver, allowed_hosts=urlsplit(url).hostname).check_unresolved(url)


def test_unresolved_check_leaves_names_to_the_proxy() -> None:
    checked = url_filter(refusing_resolver).check_unresolved("http://images.invalid/x")
    assert checked == ("http", "images.invalid", 80)
