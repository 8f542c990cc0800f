"""Deployment files: deploy/compose.yaml, its Dockerfiles and its configuration files.

No container engine is needed: the compose file is validated against the Compose Specification
schema, cross-checked against the workspace (console scripts, packages, options, volumes owned
in the images), and its api/worker/scrubber/migrate commands and health checks are run as local
processes on SQLite and a folder broker. tests/compose runs the real stack on Docker.
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
KEYSTONE_DIR = DEPLOY / "keystone"
HAPROXY_CONF = DEPLOY / "haproxy" / "haproxy.cfg"
VENV_BIN = REPO / ".venv" / "bin"

CONFIG_TARGET = "/etc/glimpse/glimpse.conf"
DATADIR_TARGET = "/var/lib/glimpse/images"
ONE_SHOT = "migrate"
CATALOG = "metadefs"  # one-shot too: loads etc/metadefs once the schema exists
LONG_RUNNING = ("api", "worker", "scrubber")
GLIMPSE_SERVICES = (ONE_SHOT, CATALOG, *LONG_RUNNING)
KEYSTONE_SERVICES = ("keystone-bootstrap", "keystone")
BALANCER = "balancer"
SERVICE_UID = "10001"
# The two published ports: the balancer's (the API) and Keystone's, on loopback by default.
PUBLISHED = {
    BALANCER: "${GLIMPSE_PUBLISH_ADDRESS:-127.0.0.1}:${GLIMPSE_API_PORT:-9292}:9292",
    "keystone": "${GLIMPSE_PUBLISH_ADDRESS:-127.0.0.1}:${GLIMPSE_KEYSTONE_PORT:-5000}:5000",
}
REPLICAS = {"api": 2, "worker": 2, "scrubber": 2}
DEFAULT_PASSWORDS = {
    "GLIMPSE_ADMIN_PASSWORD": "change-me",
    "GLIMPSE_SERVICE_PASSWORD": "change-me-service",
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
    assert set(services) == {
        *GLIMPSE_SERVICES,
        *KEYSTONE_SERVICES,
        BALANCER,
        "postgres",
        "redis",
    }
    assert set(built_services(compose)) == {*GLIMPSE_SERVICES, *KEYSTONE_SERVICES}
    assert re.fullmatch(r"postgres:15(\..*)?", services["postgres"]["image"])
    assert re.fullmatch(r"redis:7(\..*)?", services["redis"]["image"])
    assert re.fullmatch(r"haproxy:2\.\d+", services[BALANCER]["image"])
    for name in ("keystone-bootstrap", ONE_SHOT, CATALOG):
        assert services[name].get("restart", "no") == "no", name
    for name in LONG_RUNNING:
        depends_on = services[name]["depends_on"]
        assert depends_on[ONE_SHOT] == {"condition": "service_completed_successfully"}, name
    assert services["keystone"]["depends_on"] == {
        "keystone-bootstrap": {"condition": "service_completed_successfully"}
    }
    assert services[BALANCER]["depends_on"] == {
        "api": {"condition": "service_healthy"},
        CATALOG: {"condition": "service_completed_successfully"},
    }
    assert "--daemon" in command_argv(services["scrubber"])
    assert command_argv(services[ONE_SHOT])[-2:] == ["db", "sync"]
    assert command_argv(services[CATALOG])[-3:] == ["db", "load_metadefs", "--if-empty"]
    assert services[CATALOG]["depends_on"] == {
        ONE_SHOT: {"condition": "service_completed_successfully"}
    }
    for name, replicas in REPLICAS.items():
        assert services[name]["deploy"]["replicas"] == replicas, name


def test_only_the_balancer_and_keystone_publish_ports_on_loopback_by_default() -> None:
    services = load_compose()["services"]
    published = {name: svc["ports"] for name, svc in services.items() if "ports" in svc}
    assert published == {name: [port] for name, port in PUBLISHED.items()}


def test_every_long_running_service_has_a_health_check_that_exercises_it() -> None:
    services = load_compose()["services"]
    probes = {
        "api": "/healthcheck",
        "worker": "--ping",
        "scrubber": "--check",
        "keystone": "healthcheck.py",
        BALANCER: "/healthcheck",
        "postgres": "pg_isready",
        "redis": "ping",
    }
    for name, service in services.items():
        if name in ("keystone-bootstrap", ONE_SHOT, CATALOG):
            assert "healthcheck" not in service, name
            continue
        test = service["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"}, name
        assert probes[name] in " ".join(test), (name, test)


def test_default_passwords_are_the_ones_keystone_bootstrap_refuses_beyond_loopback() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for variable, default in DEFAULT_PASSWORDS.items():
        uses = set(re.findall(rf"\$\{{{variable}:-([^}}]*)\}}", text))
        assert uses == {default}, (variable, uses)
    bootstrap = (KEYSTONE_DIR / "bootstrap.py").read_text(encoding="utf-8")
    match = re.search(r"DEFAULT_PASSWORDS = frozenset\(\{(.*)\}\)", bootstrap)
    assert match is not None
    assert set(re.findall(r'"([^"]+)"', match.group(1))) == set(DEFAULT_PASSWORDS.values())
    # The API's configuration file holds the same default, overridden by the environment.
    assert load_settings(COMPOSE_CONF).keystone_authtoken.password is not None


def test_stores_and_staging_are_shared_volumes_and_the_config_file_is_mounted() -> None:
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
    # Every store and the staging store: one named volume, mounted by api, worker and scrubber.
    for store_id in (*settings.enabled_backends, "os_glance_staging_store"):
        target = str(settings.store_datadir(store_id))
        volumes = {mounts(services[name]).get(target) for name in LONG_RUNNING}
        assert len(volumes) == 1, (store_id, volumes)
        assert volumes <= set(compose["volumes"]), f"{store_id} is on a named volume"


def final_stage(path: Path) -> list[str]:
    instructions = dockerfile_instructions(path)
    last = max(i for i, line in enumerate(instructions) if line.startswith("FROM"))
    return instructions[last:]


def created_and_owned(path: Path) -> tuple[set[str], set[str], str]:
    """Paths the final stage makes with mkdir -p, those it chowns -R, and the service user's
    uid (from useradd --uid)."""
    made: set[str] = set()
    owned: set[str] = set()
    uid = ""
    for line in final_stage(path):
        if not line.startswith("RUN"):
            continue
        for command in line.removeprefix("RUN").split("&&"):
            words = command.split()
            if words[:2] == ["mkdir", "-p"]:
                made.update(words[2:])
            if words[:2] == ["chown", "-R"]:
                owned.update(words[3:])
            if words and words[0] == "useradd" and "--uid" in words:
                uid = words[words.index("--uid") + 1]
    return made, owned, uid


def test_every_volume_path_exists_in_its_image_and_belongs_to_the_service_user() -> None:
    """A new named volume copies the owner of the image's directory: a path the image does not
    create belongs to root, and the service user cannot write there."""
    compose = load_compose()
    for name, service in built_services(compose).items():
        made, owned, uid = created_and_owned(dockerfile_of(service))
        assert uid == SERVICE_UID, name
        for target, source in mounts(service).items():
            if source not in compose["volumes"]:
                continue  # a file of the repository, read-only
            assert target in made, f"{name}: {target} is not created in its image"
            assert any(target == path or target.startswith(f"{path}/") for path in owned), (
                f"{name}: {target} does not belong to the service user"
            )


def test_commands_are_workspace_console_scripts_installed_by_their_image() -> None:
    providers = script_providers()
    services = load_compose()["services"]
    for name in GLIMPSE_SERVICES:
        service = services[name]
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


DOCKERFILES = [IMAGES_DIR / f"{name}.Dockerfile" for name in sorted(LONG_RUNNING)]
KEYSTONE_DOCKERFILE = IMAGES_DIR / "keystone.Dockerfile"


def test_there_is_one_dockerfile_per_service() -> None:
    assert sorted(path.name for path in IMAGES_DIR.glob("*.Dockerfile")) == [
        "api.Dockerfile",
        "keystone.Dockerfile",
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


def pinned(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line of a requirements file."""
    found = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    return {name.lower(): version for name, version in found}


def test_keystone_image_installs_the_pinned_keystone_with_hashes_and_runs_unprivileged() -> None:
    instructions = dockerfile_instructions(KEYSTONE_DOCKERFILE)
    stages = [line for line in instructions if line.startswith("FROM")]
    assert len(stages) == 2
    assert all(line.split()[1] == "python:3.11-slim" for line in stages)
    installs = [line for line in instructions if "pip install" in line and "-r " in line]
    assert len(installs) == 1
    assert "--require-hashes" in installs[0].split()
    users = [line.split()[1] for line in instructions if line.startswith("USER")]
    assert users == ["keystone"]
    # Dependencies first: the scripts come after the install, so editing them rebuilds little.
    install_at = instructions.index(installs[0])
    copies = [i for i, line in enumerate(instructions) if line.startswith("COPY deploy/keystone/")]
    assert [instructions[i] for i in copies if i < install_at] == [
        "COPY deploy/keystone/requirements.txt /tmp/requirements.txt"
    ]


def test_keystone_requirements_pin_keystone_and_mirror_the_tests_keystone() -> None:
    """Every dependency pinned with hashes, at the versions tests/keystone runs."""
    deploy = KEYSTONE_DIR / "requirements.txt"
    versions = pinned(deploy)
    assert versions["keystone"] == "30.0.0"
    assert "gunicorn" in versions
    text = deploy.read_text(encoding="utf-8")
    assert text.count("==") == len(versions)
    assert text.count("--hash=sha256:") >= len(versions)
    tested = pinned(REPO / "tests" / "keystone" / "requirements.txt")
    assert set(versions) - set(tested) == {"gunicorn"}
    assert {name: versions[name] for name in tested} == tested


def test_keystone_runs_under_gunicorn_with_keystones_wsgi_module() -> None:
    namespace: dict[str, Any] = {}
    exec((KEYSTONE_DIR / "gunicorn.conf.py").read_text(encoding="utf-8"), namespace)  # noqa: S102 -- our own file
    assert namespace["wsgi_app"] == "keystone.wsgi.api:application"
    assert namespace["bind"] == "0.0.0.0:5000"
    keystone = load_compose()["services"]["keystone"]
    assert "command" not in keystone  # gunicorn with no arguments: Keystone parses argv
    assert "/v3" in (KEYSTONE_DIR / "healthcheck.py").read_text(encoding="utf-8")


def test_balancer_checks_every_api_replica_found_through_dockers_dns() -> None:
    config = HAPROXY_CONF.read_text(encoding="utf-8")
    lines = [line.split("#")[0].strip() for line in config.splitlines()]
    assert "nameserver dns 127.0.0.11:53" in lines
    assert "bind :9292" in lines
    template = next(line for line in lines if line.startswith("server-template"))
    assert template.split()[1:] == ["api", "10", "api:9292"]
    defaults = next(line for line in lines if line.startswith("default-server"))
    assert {"check", "resolvers", "docker"} <= set(defaults.split())
    assert "http-check send meth GET uri /healthcheck" in lines
    assert "http-check expect status 200" in lines


def test_a_stopping_replica_drains_longer_than_the_balancer_takes_to_drop_it() -> None:
    """SIGTERM: the replica fails its check and keeps serving for drain_delay, which must
    outlast `fall` failed checks `inter` apart; compose waits for the drain and the grace."""
    lines = [line.split("#")[0].strip() for line in HAPROXY_CONF.read_text().splitlines()]
    defaults = next(line for line in lines if line.startswith("default-server")).split()
    inter = float(defaults[defaults.index("inter") + 1].removesuffix("s"))
    fall = int(defaults[defaults.index("fall") + 1])
    settings = load_settings(COMPOSE_CONF)
    assert settings.healthcheck.drain_delay > inter * fall
    grace = load_compose()["services"]["api"]["stop_grace_period"]
    assert int(grace.removesuffix("s")) > (
        settings.healthcheck.drain_delay + settings.graceful_shutdown_timeout
    )
    # Each replica's /metrics is for a scraper on the compose network, never for clients.
    assert "http-request deny deny_status 404 if { path /metrics } || { path_beg /metrics/ }" in (
        lines
    )


# --- the configuration file --------------------------------------------------------------------


def test_compose_config_loads_with_the_settings_loader(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = load_settings(COMPOSE_CONF)
    assert not [r for r in caplog.records if "unknown option" in r.getMessage()], caplog.text
    assert settings.bind_host == "0.0.0.0"  # noqa: S104 -- the container listens on all
    assert settings.bind_port == 9292
    assert settings.auth_strategy == "keystone"
    assert settings.keystone_authtoken.auth_url == "http://keystone:5000/v3"
    assert settings.keystone_authtoken.username == "glimpse"
    assert settings.keystone_authtoken.project_name == "service"
    assert settings.enabled_backends == {"fast": "file", "cheap": "file"}
    assert settings.default_store == "fast"
    assert settings.store_datadir("fast") == Path(DATADIR_TARGET)
    assert settings.store_datadir("cheap") == Path("/var/lib/glimpse/cheap")
    assert settings.store_datadir("os_glance_staging_store") == Path("/var/lib/glimpse/staging")
    assert settings.database.connection == "postgresql://glimpse:glimpse@postgres:5432/glimpse"
    assert settings.celery.broker_url == "redis://redis:6379/0"
    assert settings.healthcheck.disable_by_file_path == Path(
        "/var/lib/glimpse/run/healthcheck_disable"
    )
    assert settings.delayed_delete is True
    # A killed worker's import resumes within a couple of minutes.
    assert settings.task.lease_time + settings.scrubber.wakeup_time <= 120
    assert settings.celery.visibility_timeout > settings.task.lease_time
    # Glance's default filter: public hosts only, ports 80 and 443.
    assert settings.import_filtering_opts.allowed_hosts == []
    assert settings.import_filtering_opts.allowed_ports == [80, 443]


def test_compose_config_names_only_compose_hosts() -> None:
    settings = load_settings(COMPOSE_CONF)
    services = set(load_compose()["services"])
    urls = (
        settings.database.connection,
        settings.celery.broker_url,
        settings.keystone_authtoken.auth_url,
        settings.keystone_authtoken.cache_redis_url,
    )
    for url in urls:
        assert url is not None
        host = httpx.URL(url).host
        assert host in services, f"{url} points at {host}, which is no compose service"


# --- the same topology as local processes ------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def local_config(tmp_path: Path, port: int) -> Path:
    """The compose configuration with local stand-ins for postgres, redis and the volumes.
    noauth: no Keystone runs here (tests/keystone and tests/compose cover identity)."""
    parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep key case
    parser.read(COMPOSE_CONF, encoding="utf-8")
    parser["DEFAULT"]["bind_host"] = "127.0.0.1"
    parser["DEFAULT"]["bind_port"] = str(port)
    parser["DEFAULT"]["auth_strategy"] = "noauth"
    for section in parser.sections():
        if "filesystem_store_datadir" in parser[section]:
            parser[section]["filesystem_store_datadir"] = str(tmp_path / section)
    parser["healthcheck"]["disable_by_file_path"] = str(tmp_path / "run" / "healthcheck_disable")
    parser["scrubber"]["heartbeat_file"] = str(tmp_path / "run" / "scrubber.heartbeat")
    # Each container has its own 9100; here the worker and the scrubber would share one.
    parser["metrics"]["bind_host"] = "127.0.0.1"
    parser["metrics"]["port"] = "0"
    parser["DEFAULT"]["metadata_source_path"] = str(REPO / "etc" / "metadefs")  # the image's copy
    parser["database"]["connection"] = f"sqlite:///{tmp_path / 'glimpse.sqlite'}"
    parser["celery"]["broker_url"] = "filesystem://"
    parser["celery"]["broker_data_dir"] = str(tmp_path / "broker")
    path = tmp_path / "glimpse.conf"
    with path.open("w", encoding="utf-8") as handle:
        parser.write(handle)
    return path


def local_argv(service: dict[str, Any], config: Path) -> list[str]:
    return localized(command_argv(service), config)


def localized(argv: list[str], config: Path) -> list[str]:
    argv = list(argv)
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


def wait_for_health_check(
    name: str, argv: list[str], topology: LocalTopology, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    code = None
    while time.monotonic() < deadline:
        topology.check_alive()
        code = topology.run(f"{name}-health", argv, timeout=60)
        if code == 0:
            return
        time.sleep(0.5)
    pytest.fail(f"{name}'s health check exited {code}\n{topology.tail(f'{name}-health')}")


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

    for job in (ONE_SHOT, CATALOG):
        code = topology.run(job, local_argv(services[job], config), timeout=90)
        assert code == 0, topology.tail(job)
    for name in LONG_RUNNING:
        topology.start(name, local_argv(services[name], config))

    base_url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        wait_for_versions(client, topology, timeout=90.0)
        health = client.get("/healthcheck")
        assert (health.status_code, health.text) == (200, "OK")
        catalog = client.get("/v2/metadefs/namespaces", params={"limit": 1000}).json()
        shipped = {path.stem for path in (REPO / "etc" / "metadefs").glob("*.json")}
        assert len(catalog["namespaces"]) == len(shipped) > 0

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
    stored = [path for path in (tmp_path / "fast").rglob("*") if path.is_file()]
    assert [path.stat().st_size for path in stored] == [len(data)]

    # The compose health checks of the worker and the scrubber pass against these processes.
    for name in ("worker", "scrubber"):
        check = localized(services[name]["healthcheck"]["test"][1:], config)
        wait_for_health_check(name, check, topology, timeout=90.0)

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
