"""FastAPI's built-in OpenTelemetry support is off: Glimpse configures no provider, and a
request never asks OpenTelemetry for one (FastAPI asked for three on every request)."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry import _logs, metrics, trace


async def test_a_request_asks_opentelemetry_for_no_provider(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    for module, getter in (
        (trace, "get_tracer_provider"),
        (metrics, "get_meter_provider"),
        (_logs, "get_logger_provider"),
    ):
        original = getattr(module, getter)

        def counting(getter: str = getter, original: object = original) -> object:
            asked.append(getter)
            return original()  # type: ignore[operator]

        monkeypatch.setattr(module, getter, counting)

    answer = await client.get("/v2/schemas/image")

    assert answer.status_code == 200
    assert answer.json()["name"] == "image"
    assert asked == []
