"""Glance's notation for list and dict options, as pydantic types, parsed by oslo.config itself.

- `GlanceList[T]`: a ListOpt. Glance declares most of its lists with brackets
  (`enabled_import_methods = [glance-direct, web-download]`, `allowed_ports = [80, 443]`) and
  others without (`service_token_roles = service, admin`); both forms are accepted for every
  list option. Items lose their quotes (`['glance-direct', 'web-download']`), and a quoted item
  may hold commas, as oslo.config's `String(quotes=True)` items do. `[]` and an empty value are
  the empty list. Items are then converted to `T` (`GlanceList[int]` for ports).
- `GlanceDict`: a DictOpt, `key:value, key:value`. The key ends at the first colon, so values
  may hold colons (`http:10.0.0.1:3128`); a repeated or empty key is refused; values keep their
  quotes, as oslo.config's DictOpt leaves them.

- `Network`: a list item written as an address or a CIDR network (`10.0.0.0/24`, `::1`), an
  ip_network (an address is a network of one).

A value that is already a list or a mapping (constructor arguments) is taken as it is.
Environment variables use the same notation (NoDecode: pydantic-settings does not read them as
JSON).
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, TypeVar

from oslo_config import types
from pydantic import BeforeValidator
from pydantic_settings import NoDecode

T = TypeVar("T")

_ITEMS = types.String(quotes=True)


def parse_list(value: object) -> object:
    """oslo.config's ListOpt, with or without the brackets its `bounds` option demands."""
    if not isinstance(value, str):
        return value
    bracketed = value.strip().startswith("[")
    return types.List(item_type=_ITEMS, bounds=bracketed)(value)


def parse_dict(value: object) -> object:
    """oslo.config's DictOpt (string values)."""
    if not isinstance(value, str):
        return value
    return types.Dict()(value)


GlanceList = Annotated[list[T], BeforeValidator(parse_list), NoDecode]
GlanceDict = Annotated[dict[str, str], BeforeValidator(parse_dict), NoDecode]


def parse_network(value: object) -> object:
    """An address or CIDR network as ipaddress reads it (host bits must be zero)."""
    if not isinstance(value, str):
        return value
    try:
        return ipaddress.ip_network(value)
    except ValueError as exc:
        msg = f"expected an address or network (e.g. 10.0.0.0/24): {exc}"
        raise ValueError(msg) from None


Network = Annotated[IPv4Network | IPv6Network, BeforeValidator(parse_network)]
