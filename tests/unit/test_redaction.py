"""URL credentials are masked wherever text leaves the service: the rules, and the log filter."""

from __future__ import annotations

import logging
import sys

import pytest

from glimpse.domain.redaction import redact_data, redact_text, redact_url
from glimpse.logs import LOG_FORMAT, ContextFilter


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@example.com/a.img", "https://***@example.com/a.img"),
        ("http://user:p@ss@example.com:8080/a", "http://***@example.com:8080/a"),  # last '@'
        ("s3://AKID:SECRET@s3.example.com/bucket/key", "s3://***@s3.example.com/bucket/key"),
        ("https://example.com/path@v2/a.img", "https://example.com/path@v2/a.img"),  # a path
        (
            (
                "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                "&X-Amz-Credential=AKID%2F20260101&X-Amz-Signature=abc&X-Amz-Security-Token=t"
            ),
            (
                "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                "&X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***"
            ),
        ),
        (
            "https://s3.example.com/k?AWSAccessKeyId=AKID&Expires=1&Signature=abc",
            "https://s3.example.com/k?AWSAccessKeyId=***&Expires=1&Signature=***",
        ),
        (
            "https://swift.example.com/v1/AUTH_a/c/o?temp_url_sig=abc&temp_url_expires=1",
            "https://swift.example.com/v1/AUTH_a/c/o?temp_url_sig=***&temp_url_expires=1",
        ),
        (
            "https://blob.example.net/c/b?sv=2020&SIG=abc&sp=r",
            "https://blob.example.net/c/b?sv=2020&SIG=***&sp=r",
        ),
        ("https://h/x?access_token=abc#frag", "https://h/x?access_token=***#frag"),
        ("https://h/x#token=abc", "https://h/x#token=***"),
        ("https://h/x?name=disk.img&version=3", "https://h/x?name=disk.img&version=3"),
        ("https://h/x?token=", "https://h/x?token="),  # nothing to hide
        ("http://u:p@[::1/broken?sig=x", "http://***@[::1/broken?sig=***"),  # urllib refuses it
        ("file:///srv/images/abc", "file:///srv/images/abc"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_finds_every_url() -> None:
    text = (
        "Download of https://a:b@h1/x?sig=1 failed: redirected to 'http://h2/y?token=2' "
        "then <s3://k:s@h3/z>"
    )
    assert redact_text(text) == (
        "Download of https://***@h1/x?sig=*** failed: redirected to 'http://h2/y?token=***' "
        "then <s3://***@h3/z>"
    )
    assert redact_text("Copied 3 MiB") == "Copied 3 MiB"


def test_redact_data_walks_json() -> None:
    data = {"a": ["https://u:p@h/x", 3, None], "b": {"uri": "http://h/?token=t"}, "c": True}
    assert redact_data(data) == {
        "a": ["https://***@h/x", 3, None],
        "b": {"uri": "http://h/?token=***"},
        "c": True,
    }


def test_the_log_filter_redacts_messages_and_tracebacks() -> None:
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "HTTP Request: %s %s", ("GET", "http://u:pw@h/x"), None
    )
    try:
        raise ValueError("cannot fetch https://h/y?X-Amz-Signature=deadbeef")  # noqa: TRY301 -- a traceback to log
    except ValueError:
        failing = logging.LogRecord(
            "glimpse", logging.ERROR, __file__, 2, "failed", None, sys.exc_info()
        )
    for item in (record, failing):
        ContextFilter().filter(item)
    formatter = logging.Formatter(LOG_FORMAT)
    assert formatter.format(record).endswith("HTTP Request: GET http://***@h/x")
    text = formatter.format(failing)
    assert "X-Amz-Signature=***" in text
    assert "deadbeef" not in text
    assert "Traceback" in text
