"""glimpse_api.http_protocol: what uvicorn serves on its transport that holds a response's head
arrives whole and in order, whatever the sizes and number of writes, and on connections kept
alive or closed after the response."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from glimpse_api.held_writes import HELD_AT_MOST
from glimpse_api.http_protocol import LargeBodyConnection
from support import free_port

SMALL = b'{"id": "x"}'
CHUNKS = [b"a" * 10, b"b" * (HELD_AT_MOST + 1), b"c", b"d" * 100_000, b"e" * 3]


async def app(scope: Scope, _receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/small":
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(SMALL)).encode()),
        ]
        if scope["query_string"] == b"close":
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": SMALL})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})  # chunked
    for chunk in CHUNKS:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
async def base() -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=LargeBodyConnection, log_config=None
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(1000):  # it starts in milliseconds
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await serving


async def test_small_and_streamed_answers_arrive_whole_on_one_connection(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(3):  # kept alive between them
            small = await client.get("/small")
            assert small.status_code == 200
            assert small.content == SMALL
            assert small.headers["content-length"] == str(len(SMALL))
            streamed = await client.get("/streamed")
            assert streamed.content == b"".join(CHUNKS)


async def test_the_held_head_goes_out_before_the_connection_closes(base: str) -> None:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /small?close HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)  # until the server closes
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close" in head
    assert body == SMALL


async def test_pipelined_requests_are_answered_in_order(base: str) -> None:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /streamed HTTP/1.1\r\nHost: x\r\n\r\nGET /small?close HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    first, _, second = answer.partition(b"0\r\n\r\n")  # the end of the chunked body
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in first
    assert second.startswith(b"HTTP/1.1 200 OK\r\n")
    assert second.endswith(b"\r\n\r\n" + SMALL)
