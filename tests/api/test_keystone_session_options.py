"""keystoneauth's session options in [keystone_authtoken] (timeout, cafile, certfile, keyfile,
insecure, collect_timing, split_loggers), honoured for token validation, the service's own
authentication, and the Keystone and Barbican clients of key cleanup. Configs are
glance-api.conf files as Glance's docs write them; Keystone and Barbican are loopback
stand-ins (one that never answers, one on TLS that can demand a client certificate)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from glimpse.config import ConfigError, Settings, load_settings
from glimpse.db.engine import Database
from glimpse.keymanager.keystone import KeystoneError
from glimpse.services.key_cleanup import KeyCleanupService
from slow_server import SlowServer, slow_server
from tls_standin import SUBJECT_TOKEN, Pki, make_pki, tls_standin

# Far below every default deadline this test could meet by accident (http_request_timeout is
# set to 120 s below), far above the 1 s `timeout` under test.
CLIENT_PATIENCE = 45.0
USER_TOKEN = "gAAAAA-user-token-under-test"


@dataclass(frozen=True)
class Conf:
    tmp_path: Path
    database_url: str

    def write(self, auth_url: str, session_options: str, extra: str = "") -> Settings:
        path = self.tmp_path / "glance-api.conf"
        path.write_text(
            f"""[DEFAULT]
{extra}
[paste_deploy]
flavor = keystone

[keystone_authtoken]
www_authenticate_uri = {auth_url}
auth_url = {auth_url}
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = glance
password = GLANCE_PASS
{session_options}

[database]
connection = {self.database_url}

[celery]
broker_data_dir = {self.tmp_path / "broker"}

[os_glance_staging_store]
filesystem_store_datadir = {self.tmp_path / "staging"}

[os_glance_tasks_store]
filesystem_store_datadir = {self.tmp_path / "tasks"}
"""
        )
        return load_settings(path)


@pytest.fixture
def conf(tmp_path: Path, database_url: str) -> Conf:
    return Conf(tmp_path, database_url)


@pytest.fixture
def silent_keystone() -> Iterator[SlowServer]:
    with slow_server("hold") as server:
        yield server


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def list_images(client_for: Any, settings: Settings) -> int:
    client = await client_for(settings)
    response = await asyncio.wait_for(
        client.get("/v2/images", headers={"X-Auth-Token": USER_TOKEN}), CLIENT_PATIENCE
    )
    if response.status_code == 503:
        assert response.json()["message"] == "The Keystone service is temporarily unavailable."
    status: int = response.status_code
    return status


async def test_timeout_ends_a_call_keystone_never_answers(
    client_for: Any, conf: Conf, silent_keystone: SlowServer
) -> None:
    settings = conf.write(
        f"{silent_keystone.base}/v3",
        "timeout = 1\nhttp_connect_timeout = 120\nhttp_request_timeout = 120",
    )
    assert settings.keystone_authtoken.call_deadline == 1
    assert await list_images(client_for, settings) == 503
    assert silent_keystone.requests == ["POST /v3/auth/tokens?nocatalog=1 HTTP/1.1"]


async def test_timeout_ends_key_cleanup_calls(
    conf: Conf, database: Database, silent_keystone: SlowServer
) -> None:
    settings = conf.write(
        f"{silent_keystone.base}/v3",
        "timeout = 1",
        extra="",
    )
    service = KeyCleanupService(settings, database)
    # The scrubber's clients (private: the pass itself needs rows and a key manager).
    async with service._clients() as clients:  # noqa: SLF001 -- the clients under test
        assert clients.identity is not None
        with pytest.raises(KeystoneError, match="unreachable"):
            await asyncio.wait_for(clients.identity.service_token(), CLIENT_PATIENCE)


@dataclass(frozen=True)
class TlsCase:
    options: str
    cert_required: bool
    status: int
    cert_sent: bool | None  # None: the handshake fails, nothing is asked


@pytest.mark.parametrize(
    "case",
    [
        TlsCase(
            "cafile = {ca}\ncertfile = {cert}\nkeyfile = {key}",
            cert_required=True,
            status=200,
            cert_sent=True,
        ),
        TlsCase(
            "cafile = {ca}\ncertfile = {combined}", cert_required=True, status=200, cert_sent=True
        ),
        TlsCase(
            "insecure = true\ncertfile = {cert}\nkeyfile = {key}",
            cert_required=True,
            status=200,
            cert_sent=True,
        ),
        TlsCase("cafile = {ca}", cert_required=False, status=200, cert_sent=False),
        # No client certificate where one is demanded; a CA that does not sign Keystone's.
        TlsCase("cafile = {ca}", cert_required=True, status=503, cert_sent=None),
        TlsCase(
            "certfile = {cert}\nkeyfile = {key}", cert_required=True, status=503, cert_sent=None
        ),
    ],
)
async def test_tls_options_for_token_validation(
    client_for: Any, conf: Conf, pki: Pki, case: TlsCase
) -> None:
    options, cert_required, status, cert_sent = (
        case.options,
        case.cert_required,
        case.status,
        case.cert_sent,
    )
    written = options.format(
        ca=pki.ca, cert=pki.client_cert, key=pki.client_key, combined=pki.client_combined
    )
    with tls_standin(pki, client_cert_required=cert_required) as keystone:
        settings = conf.write(f"{keystone.base}/v3", written)
        assert await list_images(client_for, settings) == status
    if cert_sent is None:
        assert keystone.requests == []  # the handshake failed: nothing was asked
    else:
        assert keystone.requests == [
            ("POST /v3/auth/tokens?nocatalog=1 HTTP/1.1", cert_sent),
            ("GET /v3/auth/tokens?nocatalog=1 HTTP/1.1", cert_sent),
        ]


def test_keyfile_needs_certfile(conf: Conf) -> None:
    with pytest.raises(ConfigError, match=r"\[keystone_authtoken\] keyfile.*without certfile"):
        conf.write("https://keystone.example/v3", "keyfile = /etc/glance/client.key")


@pytest.mark.parametrize("split", [False, True])
async def test_collect_timing_and_split_loggers(
    client_for: Any,
    conf: Conf,
    pki: Pki,
    caplog: pytest.LogCaptureFixture,
    split: bool,
) -> None:
    with tls_standin(pki, client_cert_required=False) as keystone:
        settings = conf.write(
            f"{keystone.base}/v3",
            f"cafile = {pki.ca}\ncollect_timing = true\nsplit_loggers = {str(split).lower()}",
        )
        with caplog.at_level(logging.DEBUG, logger="glimpse.session"):
            assert await list_images(client_for, settings) == 200
    url = f"{keystone.base}/v3/auth/tokens"
    lines = [
        (r.name, r.levelno, r.getMessage())
        for r in caplog.records
        if r.name.startswith("glimpse.session")
    ]
    request, response, request_id = (
        ("glimpse.session.request", "glimpse.session.response", "glimpse.session.request-id")
        if split
        else ("glimpse.session",) * 3
    )
    assert (request, logging.DEBUG, f"REQ: POST {url}") in lines
    assert (response, logging.DEBUG, f"RESP: GET {url}: 200") in lines
    assert (request_id, logging.DEBUG, f"GET call to {url} used request id req-standin-1") in lines
    timings = [message for name, level, message in lines if level == logging.INFO]
    assert [message.split(" in ")[0] for message in timings] == [
        f"POST {url}: 201",
        f"GET {url}: 200",
    ]
    assert {name for name, level, _ in lines if level == logging.INFO} == {response}
    # Tokens travel in headers and bodies; neither is ever logged.
    assert USER_TOKEN not in caplog.text
    assert SUBJECT_TOKEN not in caplog.text


async def test_key_cleanup_clients_are_built_from_the_section(
    conf: Conf, database: Database, pki: Pki
) -> None:
    with tls_standin(pki, client_cert_required=True) as standin:
        barbican = f"[barbican]\nbarbican_endpoint = {standin.base}\nverify_ssl_path = {pki.ca}"
        settings = conf.write(
            f"{standin.base}/v3",
            f"cafile = {pki.ca}\ncertfile = {pki.client_cert}\nkeyfile = {pki.client_key}\n\n"
            + barbican,
        )
        service = KeyCleanupService(settings, database)
        async with service._clients() as clients:  # noqa: SLF001 -- the clients under test
            assert clients.identity is not None
            assert clients.barbican is not None
            token = await clients.identity.service_token()
            assert await clients.barbican.delete_secret(token.value, "secret-1") == 204
    assert standin.requests == [
        ("POST /v3/auth/tokens?nocatalog=1 HTTP/1.1", True),
        ("DELETE /v1/secrets/secret-1 HTTP/1.1", True),
    ]
