"""GET/HEAD /healthcheck as oslo.middleware's Healthcheck app (disable_by_file backend) answers
them in Glance's paste pipeline: before authentication, 200 `OK` or 503 `DISABLED BY FILE`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from glimpse_api.routers.healthcheck import negotiate
from personas import ADMIN, proxy_client


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The health check never reads the database: SQLite only here."""
    return f"sqlite:///{tmp_path / 'glimpse.sqlite'}"


@pytest.fixture
def disable_file(tmp_path: Path) -> Path:
    return tmp_path / "run" / "healthcheck_disable"


def disable(path: Path) -> None:
    path.parent.mkdir(exist_ok=True)
    path.touch()


def enable(path: Path) -> None:
    path.unlink()


@pytest.fixture
async def client(make_settings: Any, client_for: Any, disable_file: Path) -> httpx.AsyncClient:
    """Behind trusted-proxy, where every other route wants an identity."""
    return await proxy_client(
        make_settings, client_for, healthcheck={"disable_by_file_path": str(disable_file)}
    )


async def test_healthy_node_answers_ok_without_any_identity(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/images", headers={"Accept": "*/*"})).status_code == 401
    response = await client.get("/healthcheck", headers={"Accept": "*/*"})
    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    head = await client.head("/healthcheck")
    assert head.status_code == 204
    assert head.content == b""


async def test_disable_file_turns_the_node_away_until_removed(
    client: httpx.AsyncClient, disable_file: Path
) -> None:
    disable(disable_file)
    response = await client.get("/healthcheck", headers={"Accept": "text/plain"})
    assert (response.status_code, response.text) == (503, "DISABLED BY FILE")
    assert (await client.head("/healthcheck")).status_code == 503
    enable(disable_file)
    response = await client.get("/healthcheck", headers={"Accept": "text/plain"})
    assert (response.status_code, response.text) == (200, "OK")


@pytest.mark.parametrize(
    ("disabled", "status", "reason"), [(False, 200, "OK"), (True, 503, "DISABLED BY FILE")]
)
async def test_json_answer_has_reasons_and_never_details(
    client: httpx.AsyncClient, disable_file: Path, disabled: bool, status: int, reason: str
) -> None:
    if disabled:
        disable(disable_file)
    # Not even for an admin asking for them: the endpoint is public.
    response = await client.get(
        "/healthcheck", params={"detailed": "true"}, headers={**ADMIN, "Accept": "application/json"}
    )
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.text) == {"detailed": False, "reasons": [reason]}


async def test_html_answer_names_the_reason(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthcheck", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<td>OK</td>" in response.text


async def test_without_disable_file_option_the_node_is_always_healthy(
    make_settings: Any, client_for: Any
) -> None:
    client = await client_for(make_settings())
    response = await client.get("/healthcheck", headers={"Accept": "text/plain"})
    assert (response.status_code, response.text) == (200, "OK")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "text/plain"),
        ("", "text/plain"),
        ("*/*", "text/plain"),
        ("application/json", "application/json"),
        ("text/*", "text/plain"),
        ("text/html", "text/html"),
        ("text/html;q=0.5, application/json", "application/json"),
        ("application/json;q=0.2, text/*;q=0.9", "text/plain"),
        ("text/*;q=0.3, text/html;q=0.8, application/json;q=0.5", "text/html"),
        ("text/plain;q=0, */*;q=0.1", "text/html"),
        ("image/png", "text/plain"),  # nothing acceptable: plain, never 406
        ("application/json;q=bogus", "text/plain"),
    ],
)
def test_negotiation_follows_webob_acceptable_offers(accept: str | None, chosen: str) -> None:
    assert negotiate(accept) == chosen
