"""Concurrent requests with one uncached token share a single Keystone validation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.requests import Request

from glimpse.config import load_settings
from glimpse.domain.errors import NotAuthenticated
from glimpse_api.keystone import KeystoneAuthenticator
from glimpse_api.keystone.client import TokenRejected
from glimpse_api.keystone.tokens import TokenInfo

OPTIONS = {"auth_url": "http://keystone.invalid/v3", "username": "g", "password": "p"}


class SlowKeystone:
    """Stands in for KeystoneClient: answers once `release` is set, counting the questions."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.asked = 0

    async def validate(self, token: str) -> TokenInfo:
        self.asked += 1
        await self.release.wait()
        if token == "bad":
            raise TokenRejected(token)
        return TokenInfo("u", "default", "p", "default", ("member",), _in_an_hour())


def _in_an_hour() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def request(token: str) -> Request:
    return Request({"type": "http", "headers": [(b"x-auth-token", token.encode())]})


@pytest.fixture
async def authenticator() -> KeystoneAuthenticator:
    settings = load_settings(
        None, auth_strategy="keystone", keystone_authtoken={**OPTIONS, "project_name": "s"}
    )
    authenticator = KeystoneAuthenticator(settings.keystone_authtoken, httpx.AsyncClient())
    yield authenticator
    await authenticator.aclose()


async def test_one_validation_for_concurrent_requests(authenticator: KeystoneAuthenticator) -> None:
    keystone = SlowKeystone()
    authenticator.client = keystone  # type: ignore[assignment]  # a stand-in client
    waiting = [
        asyncio.ensure_future(authenticator.authenticate(request("t"), "r")) for _ in range(5)
    ]
    await asyncio.sleep(0)
    keystone.release.set()
    contexts = await asyncio.gather(*waiting)
    assert {c.project_id for c in contexts} == {"p"}
    assert keystone.asked == 1
    # The answer is cached: a later request asks nobody.
    await authenticator.authenticate(request("t"), "r")
    assert keystone.asked == 1


async def test_a_rejection_reaches_every_waiter(authenticator: KeystoneAuthenticator) -> None:
    keystone = SlowKeystone()
    authenticator.client = keystone  # type: ignore[assignment]  # a stand-in client
    waiting = [
        asyncio.ensure_future(authenticator.authenticate(request("bad"), "r")) for _ in range(3)
    ]
    await asyncio.sleep(0)
    keystone.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, NotAuthenticated) for r in results)
    assert keystone.asked == 1
