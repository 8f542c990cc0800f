"""Settings: the glance-api.conf source, environment overrides, errors and the sample."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from glimpse.config import ConfigError, load_settings
from glimpse.config.sample import render
from glimpse.config.units import parse_size
from glimpse.db.urls import async_url
from support import command, environment, free_port

ROOT = Path(__file__).resolve().parents[2]

GLANCE_CONF = """\
[DEFAULT]
bind_host = 127.0.0.2
bind_port = 9393
workers = 3
image_size_cap = 2048
user_storage_quota = 10GB
image_property_quota = 5
image_tag_quota = 6
image_member_quota = 7
api_limit_max = 50
limit_param_default = 10
enabled_backends = fast:file, cheap:file
show_image_direct_url = True
show_multiple_locations = False
hashing_algorithm = sha256
debug = True
transport_url = rabbit://guest:guest@localhost:5672/

[glance_store]
default_backend = cheap

[fast]
filesystem_store_datadir = /srv/fast
store_description = Fast disks

[cheap]
filesystem_store_datadir = /srv/cheap

[database]
connection = postgresql+psycopg2://glance:secret@db.example.com/glance

[keystone_authtoken]
www_authenticate_uri = http://keystone:5000
auth_url = http://keystone:5000
auth_type = password
username = glance
password = s3cret
project_name = service
user_domain_name = Default
project_domain_name = Default
service_token_roles = service, Admin
service_token_roles_required = true
token_cache_time = 60
memcached_servers = cache1:11211,cache2:11211
cache_redis_url = redis://cache:6379/3
region_name = RegionOne

[paste_deploy]
flavor = keystone
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "glance-api.conf"
    path.write_text(text)
    return path


def test_glance_api_conf_loads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, GLANCE_CONF)
    with caplog.at_level(logging.WARNING):
        settings = load_settings(path)
    assert (settings.bind_host, settings.bind_port, settings.workers) == ("127.0.0.2", 9393, 3)
    assert settings.image_size_cap == 2048
    assert settings.user_storage_quota == 10 * 1024**3
    assert (settings.image_property_quota, settings.image_tag_quota) == (5, 6)
    assert settings.image_member_quota == 7
    assert (settings.api_limit_max, settings.limit_param_default) == (50, 10)
    assert settings.enabled_backends == {"fast": "file", "cheap": "file"}
    assert settings.default_store == "cheap"
    assert settings.store_datadir("fast") == Path("/srv/fast")
    assert settings.store_options("fast").store_description == "Fast disks"
    assert settings.show_image_direct_url is True
    assert settings.hashing_algorithm == "sha256"
    assert settings.debug is True
    assert settings.database.connection.startswith("postgresql+psycopg2://")
    # [paste_deploy] flavor = keystone without an auth_strategy means Keystone, as in Glance.
    assert settings.auth_strategy == "keystone"
    keystone = settings.keystone_authtoken
    assert keystone.identity_url == "http://keystone:5000/v3"
    assert keystone.challenge_uri == "http://keystone:5000"
    assert (keystone.username, keystone.project_name) == ("glance", "service")
    assert keystone.password is not None
    assert keystone.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert keystone.service_token_roles == ["service", "Admin"]
    assert keystone.service_token_roles_required is True
    assert keystone.token_cache_time == 60
    assert keystone.memcached_servers == ["cache1:11211", "cache2:11211"]
    assert keystone.cache_redis_url == "redis://cache:6379/3"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sorted(warnings) == sorted(
        [
            f"Ignoring unknown option [DEFAULT] transport_url in {path}",
            f"Ignoring unknown option [keystone_authtoken] region_name in {path}",
        ]
    )


KEYSTONE_SECTION = """
[keystone_authtoken]
auth_url = http://10.0.0.5/identity/v3/
username = glance
password = pw
project_name = service
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[paste_deploy]\nflavor = keystone\n", "keystone"),
        ("[paste_deploy]\nflavor = keystone+cachemanagement\n", "keystone"),
        ("[paste_deploy]\nflavor = caching\n", "noauth"),
        (
            "[DEFAULT]\nauth_strategy = trusted-proxy\n[paste_deploy]\nflavor = keystone\n",
            "trusted-proxy",
        ),
        ("[DEFAULT]\nauth_strategy = keystone\n", "keystone"),
    ],
)
def test_paste_deploy_flavor_selects_keystone(tmp_path: Path, text: str, expected: str) -> None:
    settings = load_settings(write(tmp_path, text + KEYSTONE_SECTION))
    assert settings.auth_strategy == expected
    keystone = settings.keystone_authtoken
    assert keystone.identity_url == "http://10.0.0.5/identity/v3"
    assert keystone.challenge_uri == "http://10.0.0.5/identity"
    assert keystone.service_token_roles == ["service"]
    assert keystone.token_cache_time == 300


def test_keystone_needs_credentials(tmp_path: Path) -> None:
    path = write(
        tmp_path, "[paste_deploy]\nflavor = keystone\n[keystone_authtoken]\nusername = g\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "auth_strategy=keystone needs [keystone_authtoken] auth_url, password, project_name" in (
        str(caught.value)
    )
    assert str(path) in str(caught.value)


def test_keystone_options_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIMPSE_AUTH_STRATEGY", "keystone")
    monkeypatch.setenv("GLIMPSE_KEYSTONE_AUTHTOKEN__AUTH_URL", "http://ks:5000/v3")
    monkeypatch.setenv("GLIMPSE_KEYSTONE_AUTHTOKEN__USERNAME", "glance")
    monkeypatch.setenv("GLIMPSE_KEYSTONE_AUTHTOKEN__PASSWORD", "pw")
    monkeypatch.setenv("GLIMPSE_KEYSTONE_AUTHTOKEN__PROJECT_NAME", "service")
    monkeypatch.setenv("GLIMPSE_KEYSTONE_AUTHTOKEN__SERVICE_TOKEN_ROLES", "service,nova")
    settings = load_settings()
    assert settings.auth_strategy == "keystone"
    assert settings.keystone_authtoken.identity_url == "http://ks:5000/v3"
    assert settings.keystone_authtoken.service_token_roles == ["service", "nova"]


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GLANCE_CONF)
    monkeypatch.setenv("GLIMPSE_BIND_PORT", "9500")
    monkeypatch.setenv("GLIMPSE_DATABASE__CONNECTION", "sqlite:///other.sqlite")
    monkeypatch.setenv("GLIMPSE_GLANCE_STORE__DEFAULT_BACKEND", "fast")
    settings = load_settings(path)
    assert settings.bind_port == 9500
    assert settings.database.connection == "sqlite:///other.sqlite"
    assert settings.default_store == "fast"
    assert settings.workers == 3  # still from the file


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[DEFAULT]\nbind_port = 9444\n")
    monkeypatch.setenv("GLIMPSE_CONFIG", str(path))
    assert load_settings().bind_port == 9444


def test_defaults_without_a_file() -> None:
    settings = load_settings()
    assert (settings.bind_host, settings.bind_port) == ("127.0.0.1", 9292)
    assert settings.enabled_backends == {"file": "file"}
    assert settings.default_store == "file"
    assert settings.store_datadir("file") == Path("data/images")
    assert settings.database.connection == "sqlite:///data/glimpse.sqlite"
    assert settings.celery.broker_url == "filesystem://"
    assert settings.auth_strategy == "noauth"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[DEFAULT]\nbind_port = lots\n", "[DEFAULT] bind_port"),
        ("[DEFAULT]\nimage_tag_quota = many\n", "[DEFAULT] image_tag_quota"),
        ("[DEFAULT]\nuser_storage_quota = 10 parsecs\n", "[DEFAULT] user_storage_quota"),
        ("[DEFAULT]\nenabled_backends = fast\n", "[DEFAULT] enabled_backends"),
        ("[DEFAULT]\nauth_strategy = keystone-ish\n", "[DEFAULT] auth_strategy"),
        ("[DEFAULT]\nhashing_algorithm = crc1\n", "[DEFAULT] hashing_algorithm"),
        ("[database]\nmax_pool_size = 0\n", "[database] max_pool_size"),
        (
            "[keystone_authtoken]\ncache_redis_url = memcache://x\n",
            "[keystone_authtoken] cache_redis_url",
        ),
        ("[keystone_authtoken]\ntoken_cache_time = -2\n", "[keystone_authtoken] token_cache_time"),
        ("[DEFAULT]\nenabled_backends = a:file\n[a]\nweight = heavy\n", "[a] weight"),
    ],
)
def test_invalid_values_name_the_option_and_the_file(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert where in str(caught.value)
    assert str(path) in str(caught.value)


def test_unknown_store_type_and_default_backend_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported type 'tape'"):
        load_settings(write(tmp_path, "[DEFAULT]\nenabled_backends = t:tape\n"))
    with pytest.raises(ConfigError, match="default_backend 'nope'"):
        load_settings(write(tmp_path, "[glance_store]\ndefault_backend = nope\n"))


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.conf")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("512", 512), ("1KB", 1024), ("10 MB", 10 * 1024**2), ("2gb", 2 * 1024**3)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_size_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size("ten")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "sqlite:////var/lib/glance/glance.sqlite",
            "sqlite+aiosqlite:////var/lib/glance/glance.sqlite",
        ),
        ("postgresql://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql+psycopg2://u:p@h:5433/db", "postgresql+asyncpg://u:p@h:5433/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_glance_database_urls_use_async_drivers(given: str, expected: str) -> None:
    assert async_url(given).render_as_string(hide_password=False) == expected


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        async_url("mysql+pymysql://u:p@h/glance")


def test_sample_config_is_current() -> None:
    committed = (ROOT / "etc" / "glimpse.conf.sample").read_text()
    assert committed == render(), "run `make sample-config` and commit the result"


def test_sample_config_loads_as_a_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, render())
    assert load_settings(path).bind_port == 9292


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_api_refuses_to_start_on_an_invalid_value(tmp_path: Path) -> None:
    path = write(tmp_path, "[DEFAULT]\nbind_port = 99999\n")
    result = _run("glimpse_api.main", "--config-file", str(path))
    assert result.returncode == 2
    assert "[DEFAULT] bind_port" in result.stderr
    assert str(path) in result.stderr


def test_noauth_refuses_a_public_bind(tmp_path: Path) -> None:
    path = write(tmp_path, "[DEFAULT]\nbind_host = 0.0.0.0\n")
    result = _run("glimpse_api.main", "--config-file", str(path))
    assert result.returncode == 2
    assert "noauth" in result.stderr


def test_uvicorn_started_by_hand_refuses_noauth_on_a_public_bind(tmp_path: Path) -> None:
    """The refusal is in the app factory, so it holds without glimpse-api's own checks."""
    path = write(tmp_path, "[DEFAULT]\nbind_host = 0.0.0.0\n")
    port = free_port()
    result = subprocess.run(
        [
            command("uvicorn"),
            "glimpse_api.app:app_from_environment",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=environment(GLIMPSE_CONFIG=str(path)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "auth_strategy=noauth refuses to listen on 0.0.0.0" in result.stderr
    assert "Uvicorn running" not in result.stderr


def test_policy_options_load_as_glance_writes_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        "[DEFAULT]\nauth_strategy = trusted-proxy\ntrusted_proxies = [10.2.0.0/16, 10.3.0.4]\n"
        "[oslo_policy]\nenforce_new_defaults = False\nenforce_scope = False\n"
    )
    with caplog.at_level(logging.WARNING):
        settings = load_settings(write(tmp_path, text))
    assert [str(n) for n in settings.trusted_proxies] == ["10.2.0.0/16", "10.3.0.4/32"]
    assert settings.oslo_policy.enforce_new_defaults is False
    # oslo.policy 6 always enforces scope: the option is accepted, and its false is ignored.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("enforce_scope = false is ignored" in w for w in warnings), warnings
    assert not any("Ignoring unknown option" in w for w in warnings), warnings


def test_reserved_store_ids_cannot_be_enabled(tmp_path: Path) -> None:
    text = "[DEFAULT]\nenabled_backends = fast:file, os_glance_staging_store:file\n"
    with pytest.raises(ConfigError, match="'os_glance_staging_store' is reserved"):
        load_settings(write(tmp_path, text))


@pytest.mark.parametrize(
    "text",
    [
        (
            "[DEFAULT]\nenabled_backends = a:file, b:file\n"
            "[a]\nfilesystem_store_datadir = /srv/x\n[b]\nfilesystem_store_datadir = /srv/x/\n"
        ),
        (
            "[DEFAULT]\nenabled_backends = a:file\n[a]\nfilesystem_store_datadir = /srv/x\n"
            "[os_glance_staging_store]\nfilesystem_store_datadir = /srv/x\n"
        ),
    ],
)
def test_file_stores_sharing_a_directory_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="share the directory /srv/x"):
        load_settings(write(tmp_path, text))


def test_reserved_stores_default_and_configured_directories(tmp_path: Path) -> None:
    defaults = load_settings(write(tmp_path, "[DEFAULT]\n"))
    assert defaults.store_datadir("os_glance_staging_store") == Path("data/staging")
    assert defaults.store_datadir("os_glance_tasks_store") == Path("data/tasks")
    configured = load_settings(
        write(
            tmp_path,
            "[os_glance_staging_store]\nfilesystem_store_datadir = /srv/staging\n"
            "[os_glance_tasks_store]\nfilesystem_store_datadir = /srv/tasks\n",
        )
    )
    assert configured.store_datadir("os_glance_staging_store") == Path("/srv/staging")
    assert configured.store_datadir("os_glance_tasks_store") == Path("/srv/tasks")


def test_deprecated_staging_and_work_dir_map_to_reserved_stores(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = "[DEFAULT]\nnode_staging_uri = file:///srv/old-staging\n[task]\nwork_dir = /srv/work\n"
    with caplog.at_level(logging.WARNING):
        settings = load_settings(write(tmp_path, text))
    assert settings.store_datadir("os_glance_staging_store") == Path("/srv/old-staging")
    assert settings.store_datadir("os_glance_tasks_store") == Path("/srv/work")
    warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(warnings) == 2
    assert "node_staging_uri" in warnings[0]
    assert "work_dir" in warnings[1]
    with pytest.raises(ConfigError, match="file:///path"):
        load_settings(write(tmp_path, "[DEFAULT]\nnode_staging_uri = http://x/\n"))
