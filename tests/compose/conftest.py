"""The compose stack of tests/compose, shared by its tests in file order, and its figures.

Marked `compose`: `make test` leaves these out (pyproject's addopts), `make compose-test` runs
them. They need a Docker engine with Compose v2: without one they fail, never skip.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from compose_stack import (
    FIGURES,
    DockerUnavailable,
    Stack,
    WebFiles,
    docker_ready,
    stack_environment,
)

FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("compose stack figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def web_files(tmp_path_factory: pytest.TempPathFactory) -> WebFiles:
    return WebFiles(tmp_path_factory.mktemp("webserver"))


@pytest.fixture(scope="session")
def stack(web_files: WebFiles) -> Iterator[Stack]:
    """Built, up and healthy; always taken down with its volumes, whatever happened."""
    try:
        docker_ready()
    except DockerUnavailable as exc:
        pytest.fail(f"the compose tests need a Docker engine with Compose v2: {exc}")
    admin_password = secrets.token_urlsafe(16)
    env, api_port, keystone_port = stack_environment(
        web_files.directory, admin_password, secrets.token_urlsafe(16)
    )
    running = Stack(
        env=env,
        api_url=f"http://127.0.0.1:{api_port}",
        keystone_url=f"http://127.0.0.1:{keystone_port}",
        admin_password=admin_password,
    )
    running.down()  # what an interrupted run may have left
    try:
        started = time.monotonic()
        running.compose("build", timeout=1800)
        FIGURES["build"] = f"{time.monotonic() - started:.0f}s"
        FIGURES["up to all healthy"] = f"{running.up():.0f}s"
        yield running
    finally:
        running.down()


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failed test prints the stack's recent logs (the stack is gone once the run ends)."""
    yield
    if request.node.stash.get(FAILED, False) and "stack" in request.fixturenames:
        print(request.getfixturevalue("stack").tail())  # noqa: T201 -- shown with the failure
