"""The URL filter for fetches made on a user's behalf."""

from __future__ import annotations

from typing import Any

import pytest

from glimpse.config.settings import ImportFilteringOptions
from glimpse.net.urlfilter import URLFilter, URLRefused


def url_filter(**options: Any) -> URLFilter:
    return URLFilter(ImportFilteringOptions(**options))


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
    checked = await url_filter().check("https://203.0.113.7:443/image.qcow2")
    assert (checked.host, checked.port, checked.addresses) == ("203.0.113.7", 443, ("203.0.113.7",))


async def test_unresolvable_host_is_refused() -> None:
    with pytest.raises(URLRefused, match="cannot be resolved"):
        await url_filter().check("http://no-such-host.invalid/x")
