"""Schemathesis against a real server: every operation of the served /openapi.json, for every
persona, on SQLite and PostgreSQL, with no 5xx and no answer the document does not describe.

The server is `glimpse-api` (uvicorn) on loopback with trusted-proxy identities, two file stores
(multi-store, so the store routes exist) and a real file store directory. Before each persona's
run the server gets images of two projects in every state a request can meet (seeding.py), and
the fuzzer draws path parameters from their ids most of the time. Every persona runs the
examples, fuzzing and stateful phases; to keep CI's cost to a few minutes only the admin, whom
no policy stops, also runs the coverage phase (boundary and invalid values of every input).

GLIMPSE_FUZZ_EXAMPLES (default 10) and GLIMPSE_FUZZ_SEED change the budget and the seed, for a
deeper run by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from seeding import (
    ADMIN,
    ANONYMOUS,
    MEMBER_A,
    MEMBER_B,
    PROJECTS,
    READER_A,
    STORES,
    TAG,
    seed,
)

from support import command, environment, free_port, terminate

HERE = Path(__file__).resolve().parent
EXAMPLES = int(os.environ.get("GLIMPSE_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("GLIMPSE_FUZZ_SEED", "2026"))
EVERY_PHASE = "examples,coverage,fuzzing,stateful"
WITHOUT_COVERAGE = "examples,fuzzing,stateful"
# Requests that do what the document says, yet meet a rule no schema can state (a store or
# marker that does not exist, a status that forbids the change), are rightly refused: every
# other check of schemathesis runs.
EXCLUDED_CHECKS = "positive_data_acceptance"
RUN_TIMEOUT = 420


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    headers: dict[str, str]
    phases: str
    accept: str = "application/json"  # picks the error body's media type


PERSONAS = (
    Persona("admin", ADMIN, EVERY_PHASE),
    Persona("member of project A", MEMBER_A, WITHOUT_COVERAGE),
    Persona("member of project B", MEMBER_B, WITHOUT_COVERAGE),
    # What python-glanceclient sends: errors come back as HTML.
    Persona("reader of project A", READER_A, WITHOUT_COVERAGE, accept="*/*"),
    Persona("anonymous", ANONYMOUS, WITHOUT_COVERAGE, accept="text/plain"),
)


@dataclass(frozen=True, slots=True)
class Outcome:
    persona: str
    exit_code: int
    report: dict[str, Any]
    output: str

    @property
    def problems(self) -> list[str]:
        """Every failure and error schemathesis found, one line each."""
        lines = [
            f"{failure['code']} {failure['title']} ({failure['count']}): "
            + ", ".join(failure["operations"])
            for failure in self.report.get("failures", [])
        ]
        lines += [f"error: {error['title']} ({error['count']})" for error in self.report["errors"]]
        return lines

    def figures(self) -> str:
        operations, cases = self.report["operations"], self.report["test_cases"]
        return (
            f"{self.persona}: {operations['tested']}/{operations['total']} operations, "
            f"{cases['generated']} cases, {len(self.problems)} problems"
        )


def _config(port: int, root: Path, database: str) -> str:
    """glance-api.conf for the fuzzed server, written as Glance's documentation writes it,
    with the image cache on (downloads go through it, its API answers).
    The fuzzer's URLs (web-download, locations, the Tasks API) name any host: only 127.0.0.1
    passes the filter, so none of them reaches a resolver."""
    return f"""[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}
auth_strategy = trusted-proxy
enabled_backends = fast:file, cheap:file
image_cache_dir = {root}/cache
worker_self_reference_url = http://127.0.0.1:{port}

[glance_store]
default_backend = fast

[fast]
filesystem_store_datadir = {root}/fast

[cheap]
filesystem_store_datadir = {root}/cheap

[os_glance_staging_store]
filesystem_store_datadir = {root}/staging

[os_glance_tasks_store]
filesystem_store_datadir = {root}/tasks

[import_filtering_opts]
allowed_hosts = 127.0.0.1

[database]
connection = {database}

[celery]
broker_data_dir = {root}/broker

[paste_deploy]
flavor = cachemanagement
"""


@pytest.fixture
def fuzzed_server(tmp_path: Path, database_url: str) -> Iterator[str]:
    """glimpse-api on a free loopback port, its migrated database and its stores."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path / "glance-api.conf"
    config.write_text(_config(port, tmp_path, database_url))
    env = environment()
    sync = subprocess.run(
        [command("glimpse-manage"), "--config-file", str(config), "db", "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert sync.returncode == 0, sync.stdout + sync.stderr
    log = tmp_path / "glimpse-api.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [command("glimpse-api"), "--config-file", str(config)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(url, server, log)
        yield url
    finally:
        terminate(server)


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            assert server.poll() is None, f"glimpse-api exited:\n{log.read_text()}"
            try:
                if client.get(f"{url}/versions").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    pytest.fail(f"glimpse-api did not answer in 90 s:\n{log.read_text()}")


def _dictionaries(images: list[str], tasks: list[str]) -> str:
    """schemathesis.toml: path parameters drawn mostly from what exists on the server."""
    values = {
        "images": images,
        "tasks": tasks,
        "members": list(PROJECTS),
        "stores": list(STORES),
        "tags": [TAG],
    }
    lines = [
        f"[dictionaries.{name}]\nvalues = {json.dumps(items)}\n" for name, items in values.items()
    ]
    lines.append("[parameters]")
    for parameter, dictionary, probability in (
        ("image_id", "images", 0.8),
        ("task_id", "tasks", 0.7),
        ("member_id", "members", 0.7),
        ("store_id", "stores", 0.7),
        ("tag", "tags", 0.5),
    ):
        lines.append(
            f'"path.{parameter}" = {{ dictionary = "{dictionary}", probability = {probability} }}'
        )
    return "\n".join(lines) + "\n"


def _fuzz(url: str, persona: Persona, workdir: Path) -> Outcome:
    workdir.mkdir()
    with httpx.Client(base_url=url, timeout=30) as client:
        seeds = seed(client)
    config = workdir / "schemathesis.toml"
    config.write_text(_dictionaries(seeds.images, seeds.tasks))
    report = workdir / "report.json"
    headers = [
        f"{name}: {value}" for name, value in {**persona.headers, "Accept": persona.accept}.items()
    ]
    arguments = [
        command("schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        *(option for header in headers for option in ("-H", header)),
        f"--phases={persona.phases}",
        f"--max-examples={EXAMPLES}",
        f"--seed={SEED}",
        "--workers=1",
        # A slow machine makes generation slow too: that says nothing of the API.
        "--suppress-health-check=too_slow",
        "--request-timeout=60",  # a hung request is a failure of its own, not the run's end
        f"--exclude-checks={EXCLUDED_CHECKS}",
        "--report=json",
        f"--report-json-path={report}",
    ]
    env = environment(SCHEMATHESIS_HOOKS="schemathesis_hooks", PYTHONPATH=str(HERE))
    done = subprocess.run(
        arguments,
        cwd=workdir,  # the Hypothesis example database stays out of the repository
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert report.exists(), f"schemathesis wrote no report:\n{done.stdout}{done.stderr}"
    return Outcome(persona.name, done.returncode, json.loads(report.read_text()), done.stdout)


# Five personas, two at a time, each bounded by RUN_TIMEOUT: the suite-wide 300 s is too short.
@pytest.mark.timeout(3 * RUN_TIMEOUT)
def test_no_server_error_and_no_answer_off_the_document(fuzzed_server: str, tmp_path: Path) -> None:
    # Two personas at a time: the server and the fuzzer each keep one core busy.
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(
            pool.map(
                lambda numbered: _fuzz(fuzzed_server, numbered[1], tmp_path / f"p{numbered[0]}"),
                enumerate(PERSONAS),
            )
        )
    print("\n".join(outcome.figures() for outcome in outcomes))  # noqa: T201 -- the run's figures
    for outcome in outcomes:
        assert outcome.problems == [], f"{outcome.persona}:\n{outcome.output}"
        assert outcome.exit_code == 0, f"{outcome.persona}:\n{outcome.output}"
        operations = outcome.report["operations"]
        # Every documented operation was exercised: nothing passed by being left out.
        assert operations["tested"] == operations["total"] >= 38, outcome.figures()
        assert outcome.report["test_cases"]["generated"] > operations["total"]
