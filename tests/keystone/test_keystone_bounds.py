"""Token validation under a flood, against the real Keystone: Keystone is asked at most
validation_concurrency validations at once however many random tokens arrive (its own request
log shows how many it had in progress), a valid token still gets through meanwhile, and a
refused token is remembered briefly, so the same bad token twice reaches Keystone once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from keystone_server import KeystoneEnv

from glimpse.config import Settings

pytestmark = pytest.mark.keystone

Opener = Callable[[Settings], Any]
FLOOD = 30
CONCURRENCY = 3


def as_user(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def random_token() -> str:
    return "gAAAAA" + secrets.token_urlsafe(150)  # shaped like a Fernet token, known to none


async def test_a_flood_of_random_tokens_reaches_keystone_a_few_at_a_time(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    # Every token here waits its turn to the end (none is given up as Keystone being too slow).
    client: httpx.AsyncClient = await client_for(
        keystone_settings(validation_concurrency=str(CONCURRENCY), http_request_timeout="300")
    )
    valid = keystone.token(keystone.alice)
    mark = keystone.server.log_mark()
    flood = [client.get("/v2/images", headers=as_user(random_token())) for _ in range(FLOOD)]
    legit = client.get("/v2/images", headers=as_user(valid))
    # The valid token arrives in the middle of the flood.
    responses = await asyncio.gather(*flood[: FLOOD // 2], legit, *flood[FLOOD // 2 :])
    accepted = responses.pop(FLOOD // 2)
    assert (accepted.status_code, accepted.json()["images"]) == (200, [])
    assert [response.status_code for response in responses] == [401] * FLOOD
    peak = keystone.server.peak_validations(since=mark)
    assert 1 <= peak <= CONCURRENCY


async def test_a_refused_token_is_asked_of_keystone_once_while_remembered(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    client: httpx.AsyncClient = await client_for(keystone_settings(invalid_token_cache_time="2"))
    bad = random_token()
    mark = keystone.server.log_mark()
    for _ in range(2):
        response = await client.get("/v2/images", headers=as_user(bad))
        assert response.status_code == 401
        assert response.json()["message"] == "The request you have made requires authentication."
    assert keystone.server.validations_since(mark) == 1
    await asyncio.sleep(2.5)  # past invalid_token_cache_time: Keystone is asked again
    assert (await client.get("/v2/images", headers=as_user(bad))).status_code == 401
    assert keystone.server.validations_since(mark) == 2


async def test_without_the_refusal_cache_every_bad_token_is_asked(
    keystone: KeystoneEnv, keystone_settings: Callable[..., Settings], client_for: Opener
) -> None:
    client: httpx.AsyncClient = await client_for(keystone_settings(invalid_token_cache_time="0"))
    bad = random_token()
    mark = keystone.server.log_mark()
    for _ in range(2):
        assert (await client.get("/v2/images", headers=as_user(bad))).status_code == 401
    assert keystone.server.validations_since(mark) == 2
