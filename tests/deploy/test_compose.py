"""Deployment files: deploy/compose.yaml, its Dockerfiles and its configuration file.

No container engine is needed: the compose file is validated against the Compose Specification
schema, cross-checked against the workspace (console scripts, packages, options), and its
api/worker/scrubber/migrate commands are run as local processes on SQLite and a folder broker.
"""

from __future__ import annotations

import configparser
import contextlib
import copy
import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import tomllib
import uuid
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jsonschema
import pytest
import yaml

from glimpse.config import load_settings
from glimpse.jobs import names
from support import celery_caller

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
COMPOSE_CONF = DEPLOY / "etc" / "glimpse-compose.conf"
IMAGES_DIR = DEPLOY / "images"
VENV_BIN = REPO / ".venv" / "bin"

CONFIG_TARGET = "/etc/glimpse/glimpse.conf"
DATADIR_TARGET = "/var/lib/glimpse/images"
ONE_SHOT = "migrate"
LONG_RUNNING = ("api", "worker", "scrubber")
GLIMPSE_SERVICES = (ONE_SHOT, *LONG_RUNNING)

ADMIN_HEADERS = {
    "X-Identity-Status": "Confirmed",
    "X-Project-Id": uuid.uuid4().hex,
    "X-User-Id": uuid.uuid4().hex,
    "X-Roles": "admin",
}


# --- helpers -----------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text(encoding="utf-8"))
    assert isinstance(schema, dict)
    return schema


def compose_validator() -> jsonschema.protocols.Validator:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def command_argv(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def built_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def dockerfile_of(service: dict[str, Any]) -> Path:
    build = service["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == REPO, "images build with the repository root as context"
    return Path(context / build.get("dockerfile", "Dockerfile")).resolve()


def member_paths() -> list[str]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    paths: list[str] = root["tool"]["uv"]["workspace"]["members"]
    return paths


def workspace_members() -> dict[str, dict[str, Any]]:
    """Package name -> its parsed pyproject.toml (plus its folder), for every workspace member."""
    members = {}
    for path in member_paths():
        project = tomllib.loads((REPO / path / "pyproject.toml").read_text(encoding="utf-8"))
        members[project["project"]["name"]] = {**project, "path": path}
    return members


def script_providers() -> dict[str, str]:
    """Console script -> the workspace package that declares it in [project.scripts]."""
    return {
        script: package
        for package, project in workspace_members().items()
        for script in project["project"].get("scripts", {})
    }


def installed_packages(package: str) -> set[str]:
    """`package` and the workspace members it depends on, transitively."""
    members = workspace_members()
    seen: set[str] = set()
    todo = [package]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for requirement in members[name]["project"].get("dependencies", []):
            dependency = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
            if dependency in members:
                todo.append(dependency)
    return seen


def dockerfile_instructions(path: Path) -> list[str]:
    """Instructions with their continuation lines joined and comments dropped."""
    instructions: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instructions.append(" ".join((pending + line).split()))
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    return instructions


def uv_sync_lines(path: Path) -> list[str]:
    return [i for i in dockerfile_instructions(path) if i.startswith("RUN") and "uv sync" in i]


def copy_sources(instructions: list[str]) -> set[str]:
    """Build-context paths named by COPY (not COPY --from=stage)."""
    sources: set[str] = set()
    for line in instructions:
        words = line.split()
        if words[0] == "COPY" and not any(w.startswith("--from=") for w in words):
            sources.update(w.rstrip("/") for w in words[1:-1] if not w.startswith("--"))
    return sources


def synced_package(path: Path) -> str:
    matches = [re.search(r"--package[ =](\S+)", line) for line in uv_sync_lines(path)]
    names_found = {match.group(1) if match else "" for match in matches}
    assert len(names_found) == 1, f"{path.name}: every uv sync names the same --package"
    return names_found.pop()


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a named volume or a host path) of the short volume syntax."""
    pairs = (str(volume).split(":")[:2] for volume in service.get("volumes", []))
    return {target: source for source, target in pairs}


# --- the compose file --------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    errors = sorted(compose_validator().iter_errors(load_compose()), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def _break_ports(document: dict[str, Any]) -> None:
    document["services"]["api"]["ports"] = "notalist"


def _break_top_level(document: dict[str, Any]) -> None:
    document["servics"] = {}


def _break_service_key(document: dict[str, Any]) -> None:
    api = document["services"]["api"]
    api["comand"] = api.pop("command")


def _break_condition(document: dict[str, Any]) -> None:
    document["services"]["api"]["depends_on"] = {ONE_SHOT: {"condition": "service_finished"}}


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (_break_ports, "['services', 'api', 'ports'] 'notalist' is not of type 'array'"),
        (_break_top_level, "'servics' does not match"),
        (_break_service_key, "'comand' was unexpected"),
        (_break_condition, "['services', 'api', 'depends_on']"),
    ],
    ids=["ports-not-a-list", "unknown-top-level-key", "unknown-service-key", "bad-condition"],
)
def test_invalid_compose_documents_fail_validation(
    breakage: Callable[[dict[str, Any]], None], expected: str
) -> None:
    document = copy.deepcopy(load_compose())
    breakage(document)
    errors = [
        f"{list(e.absolute_path)} {e.message}" for e in compose_validator().iter_errors(document)
    ]
    assert any(expected in error for error in errors), errors


def test_topology_has_the_expected_services() -> None:
    compose = load_compose()
    services = compose["services"]
    assert set(services) == {*GLIMPSE_SERVICES, "postgres", "redis"}
    assert set(built_services(compose)) == set(GLIMPSE_SERVICES)
    assert re.fullmatch(r"postgres:15(\..*)?", services["postgres"]["image"])
    assert re.fullmatch(r"redis:7(\..*)?", services["redis"]["image"])
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], f"{name} has a healthcheck"
    assert services["api"]["ports"] == ["9292:9292"]
    assert "restart" not in services[ONE_SHOT] or services[ONE_SHOT]["restart"] == "no"
    for name in LONG_RUNNING:
        depends_on = services[name]["depends_on"]
        assert depends_on[ONE_SHOT] == {"condition": "service_completed_successfully"}, name
    assert "--daemon" in command_argv(services["scrubber"])
    assert command_argv(services[ONE_SHOT])[-2:] == ["db", "sync"]


def test_store_volume_and_config_file_are_mounted() -> None:
    compose = load_compose()
    services = compose["services"]
    settings = load_settings(COMPOSE_CONF)
    assert str(settings.store_datadir(settings.default_store)) == DATADIR_TARGET
    for name in GLIMPSE_SERVICES:
        config_source = mounts(services[name]).get(CONFIG_TARGET)
        assert config_source is not None, f"{name} mounts no {CONFIG_TARGET}"
        assert (DEPLOY / config_source).resolve() == COMPOSE_CONF, name
        argv = command_argv(services[name])
        assert argv[argv.index("--config-file") + 1] == CONFIG_TARGET, name
    store_volumes = {mounts(services[name]).get(DATADIR_TARGET) for name in LONG_RUNNING}
    assert len(store_volumes) == 1, "api, worker and scrubber mount one and the same store"
    assert store_volumes <= set(compose["volumes"]), "the store is a named volume"


def test_commands_are_workspace_console_scripts_installed_by_their_image() -> None:
    providers = script_providers()
    for name, service in built_services(load_compose()).items():
        script = command_argv(service)[0]
        assert script in providers, f"{name}: {script} is no [project.scripts] entry"
        executable = VENV_BIN / script
        assert executable.is_file(), f"{name}: {executable.name} is not installed in .venv/bin"
        assert os.access(executable, os.X_OK), f"{name}: {executable.name} is not executable"
        dockerfile = dockerfile_of(service)
        assert dockerfile.parent == IMAGES_DIR, f"{name}: image is not built from deploy/images"
        assert dockerfile.is_file(), f"{name}: {dockerfile.name} does not exist"
        package = synced_package(dockerfile)
        assert providers[script] in installed_packages(package), (
            f"{name}: {dockerfile.name} syncs {package}, which does not install {script}"
        )


def test_each_service_image_syncs_its_own_package() -> None:
    services = load_compose()["services"]
    for name in LONG_RUNNING:
        dockerfile = dockerfile_of(services[name])
        assert dockerfile.name == f"{name}.Dockerfile"
        assert synced_package(dockerfile) == f"glimpse-{name}"


# --- the Dockerfiles ---------------------------------------------------------------------------


DOCKERFILES = sorted(IMAGES_DIR.glob("*.Dockerfile"))


def test_there_is_one_dockerfile_per_service() -> None:
    assert [path.name for path in DOCKERFILES] == [
        "api.Dockerfile",
        "scrubber.Dockerfile",
        "worker.Dockerfile",
    ]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_installs_from_the_lock_file(dockerfile: Path) -> None:
    instructions = dockerfile_instructions(dockerfile)
    first_sync = next(i for i, line in enumerate(instructions) if "uv sync" in line)
    copied_first = copy_sources(instructions[:first_sync])
    member_pyprojects = [f"{path}/pyproject.toml" for path in member_paths()]
    missing = {"uv.lock", "pyproject.toml", *member_pyprojects} - copied_first
    assert not missing, f"copied before the first uv sync: {sorted(missing)}"
    assert not any(source.endswith("/src") for source in copied_first), "sources come later"
    assert "." not in copied_first, "the dependency layer does not copy the whole context"
    for line in uv_sync_lines(dockerfile):
        assert "--frozen" in line.split(), line
        assert "--no-dev" in line.split(), line
    makefile_uv = re.search(r"uv==([\w.]+)", (REPO / "Makefile").read_text(encoding="utf-8"))
    assert makefile_uv is not None
    assert any(f"pip install --no-cache-dir uv=={makefile_uv.group(1)}" in i for i in instructions)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_is_multi_stage_slim_and_non_root(dockerfile: Path) -> None:
    instructions = dockerfile_instructions(dockerfile)
    stages = [line for line in instructions if line.startswith("FROM")]
    assert len(stages) >= 2
    assert all(line.split()[1] == "python:3.11-slim" for line in stages)
    assert any(line.startswith("COPY --from=") for line in instructions)
    users = [line.split()[1] for line in instructions if line.startswith("USER")]
    assert users, "the image sets a user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    package = synced_package(dockerfile)
    copied = copy_sources(instructions)
    members = workspace_members()
    for member in installed_packages(package):
        sources = f"{members[member]['path']}/src"
        assert sources in copied, f"{dockerfile.name} copies {member}'s sources"


def test_worker_image_has_qemu_img() -> None:
    instructions = dockerfile_instructions(IMAGES_DIR / "worker.Dockerfile")
    apt = [line for line in instructions if "apt-get install" in line]
    assert apt
    assert all("--no-install-recommends" in line and "qemu-utils" in line for line in apt)


# --- the configuration file --------------------------------------------------------------------


def test_compose_config_loads_with_the_settings_loader(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = load_settings(COMPOSE_CONF)
    assert not [r for r in caplog.records if "unknown option" in r.getMessage()], caplog.text
    assert settings.bind_host == "0.0.0.0"  # noqa: S104 -- the container listens on all
    assert settings.bind_port == 9292
    assert settings.auth_strategy == "trusted-proxy"
    assert settings.enabled_backends == {"file": "file"}
    assert settings.default_store == "file"
    assert settings.store_datadir("file") == Path(DATADIR_TARGET)
    assert settings.database.connection == "postgresql://glimpse:glimpse@postgres:5432/glimpse"
    assert settings.celery.broker_url == "redis://redis:6379/0"


def test_compose_config_names_only_compose_hosts() -> None:
    settings = load_settings(COMPOSE_CONF)
    services = set(load_compose()["services"])
    for url in (settings.database.connection, settings.celery.broker_url):
        host = httpx.URL(url).host
        assert host in services, f"{url} points at {host}, which is no compose service"


# --- the same topology as local processes ------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def local_config(tmp_path: Path, port: int) -> Path:
    """The compose configuration with local stand-ins for postgres, redis and the volume."""
    parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(COMPOSE_CONF, encoding="utf-8")
    store_id = parser["glance_store"]["default_backend"]
    parser["DEFAULT"]["bind_host"] = "127.0.0.1"
    parser["DEFAULT"]["bind_port"] = str(port)
    parser[store_id]["filesystem_store_datadir"] = str(tmp_path / "images")
    parser["os_glance_staging_store"]["filesystem_store_datadir"] = str(tmp_path / "staging")
    parser["database"]["connection"] = f"sqlite:///{tmp_path / 'glimpse.sqlite'}"
    parser["celery"]["broker_url"] = "filesystem://"
    parser["celery"]["broker_data_dir"] = str(tmp_path / "broker")
    path = tmp_path / "glimpse.conf"
    with path.open("w", encoding="utf-8") as handle:
        parser.write(handle)
    return path


def local_argv(service: dict[str, Any], config: Path) -> list[str]:
    argv = command_argv(service)
    argv[0] = str(VENV_BIN / argv[0])
    argv[argv.index("--config-file") + 1] = str(config)
    return argv


class LocalTopology:
    """Processes started from compose commands; stop() ends them SIGINT -> SIGTERM -> SIGKILL."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GLIMPSE_")}
        self.env["PYTHONUNBUFFERED"] = "1"

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log(name)
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {name} ---\n" + "\n".join(text.splitlines()[-lines:])

    def run(self, name: str, argv: list[str], timeout: float) -> int:
        with self.log(name).open("wb") as log:
            return subprocess.run(
                argv,
                check=False,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=log,
                timeout=timeout,
            ).returncode

    def start(self, name: str, argv: list[str]) -> None:
        with self.log(name).open("wb") as log:
            self.processes[name] = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group: SIGKILL reaches pool children
            )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}\n{self.tail(name)}")

    def stop(self, grace: float = 15.0) -> dict[str, int | None]:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            deadline = time.monotonic() + wait
            for process in self.processes.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
            for process in self.processes.values():
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, sig)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5.0)
        return {name: process.poll() for name, process in self.processes.items()}


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[LocalTopology]:
    local = LocalTopology(tmp_path)
    try:
        yield local
    finally:
        local.stop()


def wait_for_versions(client: httpx.Client, topology: LocalTopology, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        topology.check_alive()
        try:
            response = client.get("/versions", timeout=2.0)
        except httpx.TransportError as exc:
            last = exc
        else:
            if response.status_code == 200:
                return
            last = response.status_code
        time.sleep(0.2)
    pytest.fail(
        f"GET /versions did not answer 200 in {timeout}s ({last!r})\n{topology.tail('api')}"
    )


def parent_pid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    match = re.search(r"^PPid:\s*(\d+)$", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def test_compose_topology_runs_as_local_processes(
    tmp_path: Path, topology: LocalTopology, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = load_compose()["services"]
    port = free_port()
    config = local_config(tmp_path, port)
    settings = load_settings(config)

    code = topology.run(ONE_SHOT, local_argv(services[ONE_SHOT], config), timeout=90)
    assert code == 0, topology.tail(ONE_SHOT)
    for name in LONG_RUNNING:
        topology.start(name, local_argv(services[name], config))

    base_url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base_url, headers=ADMIN_HEADERS, timeout=10.0) as client:
        wait_for_versions(client, topology, timeout=90.0)

        created = client.post(
            "/v2/images", json={"name": "t", "disk_format": "raw", "container_format": "bare"}
        )
        assert created.status_code == 201, created.text
        image_id = created.json()["id"]
        data = os.urandom(64 * 1024) + b"glimpse"
        uploaded = client.put(
            f"/v2/images/{image_id}/file",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert uploaded.status_code == 204, uploaded.text
        downloaded = client.get(f"/v2/images/{image_id}/file")
        assert downloaded.status_code == 200, downloaded.text
        assert downloaded.content == data
        assert client.get(f"/v2/images/{image_id}").json()["status"] == "active"
    stored = [path for path in (tmp_path / "images").rglob("*") if path.is_file()]
    assert [path.stat().st_size for path in stored] == [len(data)]

    # kombu's filesystem transport keeps its exchange tables in ./control (no option for it in
    # celery_config), so the client shares the worker's working directory, not the repository.
    monkeypatch.chdir(tmp_path)
    with celery_caller(settings) as app:
        reply = app.send_task(names.PING).get(timeout=60)
    worker = topology.processes["worker"]
    assert reply["host"] == socket.gethostname()
    assert reply["pid"] != os.getpid()
    assert worker.pid in {reply["pid"], parent_pid(reply["pid"])}, "our worker answered"
    topology.check_alive()

    codes = topology.stop()
    assert all(code is not None for code in codes.values()), codes
    assert codes == dict.fromkeys(LONG_RUNNING, 0), codes
