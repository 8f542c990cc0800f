"""Credentials inside URLs never leave the service: not in a view, a task, an error or a log.

A URL may carry a secret in its userinfo (`https://user:password@host/...`, what old
glance_store locations and users' web-download URIs hold) or in its query or fragment: a
presigned S3 URL's `X-Amz-Signature`/`X-Amz-Credential`, Swift's `temp_url_sig`, an Azure SAS
`sig`, a `token=`. Those parts are replaced with `***`; the rest of the URL stays readable, so
an operator still sees which host and object it names.

Matching is textual (no parsing and re-serialising), so a URL that `urllib` would refuse is
redacted all the same, and anything that is not a secret comes out unchanged.
"""

from __future__ import annotations

import re
from typing import Final, TypeVar
from urllib.parse import unquote

MASK: Final = "***"

# scheme://userinfo@ : the greedy run stops at the last '@' before the path, as urlsplit does.
_USERINFO: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#]*@")
# One name=value parameter of a query (or of a fragment such as #access_token=...).
_PARAMETER: Final = re.compile(r"([?&;#])([^=&;#?]+)=([^&;#]*)")
# A URL inside free text (a message, a log line): up to the first space or quote.
_URL_IN_TEXT: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")

# Parameter names (lowercased) that always hold a secret, and parts of names that do.
_SECRET_NAMES: Final = frozenset(
    {"sig", "signature", "token", "awsaccesskeyid", "temp_url_sig", "password", "passwd"}
)
_SECRET_PARTS: Final = ("signature", "credential", "token", "secret", "password", "api_key")


def _secret_name(name: str) -> bool:
    lowered = unquote(name).strip().lower()
    return lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_PARTS)


def _mask_parameter(match: re.Match[str]) -> str:
    separator, name, value = match.groups()
    if value and _secret_name(name):
        return f"{separator}{name}={MASK}"
    return match.group(0)


def redact_url(url: str) -> str:
    """`url` with its userinfo and secret parameters replaced by `***`."""
    if "://" not in url:
        return url
    redacted = _USERINFO.sub(rf"\g<1>{MASK}@", url, count=1)
    if any(separator in redacted for separator in "?#;"):
        redacted = _PARAMETER.sub(_mask_parameter, redacted)
    return redacted


def redact_text(text: str) -> str:
    """Every URL in `text` redacted (a message that quotes a URL, an exception's text)."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


T = TypeVar("T")


def redact_data(value: T) -> T:
    """JSON-like data (a task's input or result) with every URL in its strings redacted."""
    if isinstance(value, str):
        return redact_text(value)  # type: ignore[return-value]  # str in, str out
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}  # type: ignore[return-value]  # dict in, dict out
    if isinstance(value, list):
        return [redact_data(item) for item in value]  # type: ignore[return-value]  # list in, list out
    return value
