"""Keystone token data and the in-process validation cache (no network: a settable clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from glimpse_api.keystone.cache import TokenCache, token_key
from glimpse_api.keystone.tokens import MalformedToken, TokenInfo, parse_token

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def info(expires_in: int = 3600, user: str = "u") -> TokenInfo:
    return TokenInfo(
        user_id=user,
        user_domain_id="default",
        project_id="p",
        project_domain_id="default",
        roles=("member",),
        expires_at=T0 + timedelta(seconds=expires_in),
    )


def test_parse_token_lowercases_roles_and_reads_scope() -> None:
    body = {
        "token": {
            "user": {"id": "u1", "domain": {"id": "default"}},
            "project": {"id": "p1", "domain": {"id": "d2"}},
            "roles": [{"name": "Admin"}, {"name": "member"}, {"name": "MEMBER"}],
            "expires_at": "2026-11-22T03:56:41.000000Z",
        }
    }
    token = parse_token(body)
    assert token.roles == ("admin", "member")
    assert (token.user_id, token.user_domain_id) == ("u1", "default")
    assert (token.project_id, token.project_domain_id) == ("p1", "d2")
    assert token.expires_at == datetime(2026, 11, 22, 3, 56, 41, tzinfo=UTC)
    assert TokenInfo.from_json(token.to_json()) == token


@pytest.mark.parametrize(
    "body",
    [{}, {"token": {}}, {"token": {"user": {"id": "u"}, "expires_at": "soon"}}, ["token"]],
)
def test_parse_token_refuses_other_shapes(body: object) -> None:
    with pytest.raises(MalformedToken):
        parse_token(body)


async def test_entry_lives_until_the_earlier_of_expiry_and_cache_time() -> None:
    clock = Clock()
    cache = TokenCache(cache_time=300, max_entries=10, clock=clock)
    await cache.put("long", info(expires_in=3600))
    await cache.put("short", info(expires_in=60))
    clock.now = T0 + timedelta(seconds=59)
    assert await cache.get("long") is not None
    assert await cache.get("short") is not None
    clock.now = T0 + timedelta(seconds=60)
    assert await cache.get("short") is None
    clock.now = T0 + timedelta(seconds=300)
    assert await cache.get("long") is None
    assert (cache.stats.memory_hits, cache.stats.misses) == (2, 2)


async def test_memory_is_bounded_least_recently_used_first() -> None:
    cache = TokenCache(cache_time=300, max_entries=2, clock=Clock())
    await cache.put("a", info(user="a"))
    await cache.put("b", info(user="b"))
    assert await cache.get("a") is not None  # a is now the most recent
    await cache.put("c", info(user="c"))
    assert len(cache) == 2
    assert await cache.get("b") is None
    assert [(await cache.get(t)).user_id for t in ("a", "c")] == ["a", "c"]  # type: ignore[union-attr]  # both are cached


async def test_minus_one_disables_the_cache() -> None:
    cache = TokenCache(cache_time=-1, max_entries=2, clock=Clock())
    await cache.put("a", info())
    assert await cache.get("a") is None
    assert len(cache) == 0


async def test_expired_tokens_are_not_kept() -> None:
    clock = Clock()
    cache = TokenCache(cache_time=300, max_entries=2, clock=clock)
    clock.now = T0 + timedelta(hours=2)
    await cache.put("old", info(expires_in=3600))
    assert len(cache) == 0


def test_keys_are_sha256_of_the_token() -> None:
    assert token_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
