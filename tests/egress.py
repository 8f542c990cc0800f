"""Keeping tests of outbound fetches on loopback: a resolver stub for the URL filter (names
resolve to whatever address class a test needs, without asking any DNS server), and a guard
that refuses, and records, any connection to an address outside 127.0.0.0/8 and ::1."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from glimpse.net import urlfilter


class StubResolver:
    """Each name resolves to its answers in turn (the last one repeats), so a name can change
    its answer between look-ups as a rebinding DNS server makes it; an unknown name does not
    resolve. Every look-up is recorded."""

    def __init__(self, answers: dict[str, list[list[str]]] | None = None) -> None:
        self.answers = answers or {}
        self.asked: list[str] = []

    def add(self, host: str, *answers: list[str]) -> None:
        self.answers[host] = list(answers)

    async def __call__(self, host: str, port: int) -> list[str]:  # noqa: ARG002 -- any port
        self.asked.append(host)
        answers = self.answers.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers.pop(0) if len(answers) > 1 else answers[0]


@dataclass
class LoopbackGuard:
    """Connections the guard refused: (address, port) of each attempt."""

    refused: list[tuple[str, int]] = field(default_factory=list)


def _on_loopback(host: str) -> bool:
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@contextlib.contextmanager
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackGuard]:
    """Every TCP/UDP connect in this process to a non-loopback address fails (and is
    recorded) instead of leaving the machine."""
    guard = LoopbackGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _on_loopback(address[0]):
            guard.refused.append((str(address[0]), int(address[1])))
            raise ConnectionRefusedError(f"test guard: no traffic to {address[0]}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    with monkeypatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        yield guard


def install_resolver(monkeypatch: pytest.MonkeyPatch) -> StubResolver:
    """Make a stub the resolver of every URL filter this process builds: names resolve only
    as the test says (no DNS server is asked)."""
    stub = StubResolver()
    monkeypatch.setattr(urlfilter, "system_resolver", stub)
    return stub
