"""Operations endpoints beside /healthcheck: readiness (the database and the broker answer),
the drain after SIGTERM as the health check and the responses show it, and /metrics."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from glimpse.services import health
from personas import OWNER, proxy_client
from support import free_port


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'glimpse.sqlite'}"


@pytest.fixture
def draining(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """This process's drain flag, restored after the test (it is set once, for good)."""
    event = threading.Event()
    monkeypatch.setattr(health, "_draining", event)
    return event


async def test_ready_when_database_and_broker_answer(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(make_settings, client_for)
    answer = await client.get("/healthcheck/ready", headers={"Accept": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "ready": True,
        "checks": {"node": "OK", "database": "OK", "broker": "OK"},
    }
    plain = await client.get("/healthcheck/ready", headers={"Accept": "text/plain"})
    assert plain.text == "node: OK\ndatabase: OK\nbroker: OK\n"


async def test_not_ready_when_the_broker_refuses(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(
        make_settings, client_for, celery={"broker_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    answer = await client.get("/healthcheck/ready", headers={"Accept": "application/json"})
    assert answer.status_code == 503
    assert answer.json()["checks"] == {"node": "OK", "database": "OK", "broker": "UNREACHABLE"}
    # Liveness does not depend on the broker: the balancer keeps the node.
    assert (await client.get("/healthcheck")).status_code == 200


async def test_draining_node_fails_both_checks_and_closes_connections(
    make_settings: Any, client_for: Any, draining: threading.Event
) -> None:
    client = await proxy_client(make_settings, client_for)
    before = await client.get("/healthcheck")
    assert (before.status_code, "close" in before.headers.get("connection", "")) == (200, False)
    draining.set()
    live = await client.get("/healthcheck", headers={"Accept": "text/plain"})
    assert (live.status_code, live.text) == (503, "SHUTTING DOWN")
    ready = await client.get("/healthcheck/ready", headers={"Accept": "application/json"})
    assert ready.status_code == 503
    assert ready.json()["checks"]["node"] == "SHUTTING DOWN"
    # Still served, each response closing its connection.
    versions = await client.get("/versions")
    assert versions.status_code == 200
    assert versions.headers["connection"] == "close"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    return 0.0


async def test_metrics_count_requests_by_route_template_and_bytes(
    make_settings: Any, client_for: Any
) -> None:
    client = await proxy_client(make_settings, client_for)
    route = "/v2/images/{image_id}/file"
    before = (await client.get("/metrics")).text
    created = await client.post(
        "/v2/images",
        json={"disk_format": "raw", "container_format": "bare"},
        headers=OWNER,
    )
    assert created.status_code == 201, created.text
    image_id = created.json()["id"]
    put = await client.put(
        f"/v2/images/{image_id}/file",
        content=b"x" * 1000,
        headers={"Content-Type": "application/octet-stream", **OWNER},
    )
    assert put.status_code == 204, put.text
    got = await client.get(f"/v2/images/{image_id}/file", headers=OWNER)
    assert got.content == b"x" * 1000
    assert (await client.get("/no/such/thing")).status_code == 404
    after = await client.get("/metrics")
    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")

    def grew(name: str, **labels: str) -> float:
        return sample(after.text, name, **labels) - sample(before, name, **labels)

    assert grew("glimpse_api_requests_total", method="PUT", route=route, status="204") == 1
    assert grew("glimpse_api_requests_total", method="GET", route=route, status="200") == 1
    assert grew("glimpse_api_requests_total", method="GET", route="unmatched", status="404") == 1
    assert grew("glimpse_api_received_bytes_total", route=route) == 1000
    assert grew("glimpse_api_sent_bytes_total", route=route) == 1000
    assert grew("glimpse_api_request_duration_seconds_count", method="PUT", route=route) == 1
    # No raw path ever becomes a label.
    assert image_id not in after.text


async def test_metrics_only_for_allowed_networks(make_settings: Any, client_for: Any) -> None:
    client = await proxy_client(
        make_settings, client_for, metrics={"allowed_networks": "10.0.0.0/8"}
    )
    refused = await client.get("/metrics", headers={"Accept": "application/json"})
    assert refused.status_code == 404
    assert refused.json()["code"] == "404 Not Found"
    off = await proxy_client(make_settings, client_for, metrics={"enabled": False})
    assert (await off.get("/metrics")).status_code == 404
