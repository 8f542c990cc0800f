"""Image signature verification on PUT /v2/images/{id}/file where the real Barbican is not
needed or cannot serve: Barbican failing (503, a fault the real one cannot be made to show on
demand) or slow to answer (the data streams meanwhile), no user token to read a certificate
with (noauth), malformed properties (refused before any key manager is asked), images without
all four properties (never verified), and a refused certificate stopping the data.

These run against tests/barbican_double.py, a loopback stand-in for Barbican's secrets API, kept
for those faults only. Every hash method and key type, good and bad signatures and the
certificate checks run against the real Barbican and Keystone in
tests/keystone/test_keystone_image_signatures.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from barbican_double import BarbicanDouble, TokenScope, running_barbican
from glimpse.config import Settings
from personas import OWNER, new_image
from signing import Signer, make_key, sign
from signing import certificate as make_certificate

OCTET = {"Content-Type": "application/octet-stream"}
DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: several chunks
MiB = 1024 * 1024
TOKENS = {"owner-token": "owner", "other-token": "other"}


@pytest.fixture(scope="module")
def signers() -> dict[str, Signer]:
    key = make_key("RSA-PSS")
    return {"RSA-PSS": Signer(key, make_certificate(key))}


def scope(token: str) -> TokenScope | None:
    project = TOKENS.get(token)
    if project is None:
        return None
    return TokenScope(user_id=f"user-{project}", project_id=project, roles=frozenset({"member"}))


@pytest.fixture
def barbican() -> Iterator[BarbicanDouble]:
    with running_barbican(token_scope=scope) as double:
        yield double


@pytest.fixture
async def client(
    make_settings: Any, client_for: Any, barbican: BarbicanDouble
) -> httpx.AsyncClient:
    settings = make_settings(
        auth_strategy="trusted-proxy", barbican={"barbican_endpoint": barbican.url}
    )
    opened: httpx.AsyncClient = await client_for(settings)
    opened.headers.update({**OWNER, "X-Auth-Token": "owner-token"})
    return opened


@pytest.fixture
def datadir(make_settings: Any) -> Path:
    settings: Settings = make_settings()
    return settings.store_datadir(settings.default_store)


def store_cert(barbican: BarbicanDouble, der: bytes, project: str = "owner") -> str:
    return barbican.add_secret(
        str(uuid.uuid4()), project, kind="certificate", payload=der, private=False
    )


async def signed_image(
    client: httpx.AsyncClient, signature: str, hash_method: str, key_type: str, cert_uuid: str
) -> str:
    return await new_image(
        client,
        {},
        disk_format="raw",
        container_format="bare",
        img_signature=signature,
        img_signature_hash_method=hash_method,
        img_signature_key_type=key_type,
        img_signature_certificate_uuid=cert_uuid,
    )


async def put(client: httpx.AsyncClient, image_id: str, data: bytes = DATA) -> httpx.Response:
    return await client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)


async def assert_refused(
    client: httpx.AsyncClient, image_id: str, response: httpx.Response, reason: str, datadir: Path
) -> None:
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert message.startswith(f"Signature verification failed for image {image_id}: ")
    assert reason in message
    shown = (await client.get(f"/v2/images/{image_id}")).json()
    assert (shown["status"], shown["size"], shown["checksum"]) == ("queued", None, None)
    assert stored(datadir) == []


def stored(datadir: Path) -> list[Path]:
    return sorted(datadir.iterdir()) if datadir.exists() else []


@pytest.mark.parametrize(
    "case",
    [
        ("not base64!", "SHA-256", "RSA-PSS", "not properly encoded using base64"),
        ("c2ln", "MD5", "RSA-PSS", "Invalid signature hash method: MD5"),
        ("c2ln", "SHA-256", "ECC_SECP256R1", "Invalid signature key type: ECC_SECP256R1"),
    ],
)
async def test_malformed_properties_are_refused_before_barbican_is_asked(
    client: httpx.AsyncClient,
    barbican: BarbicanDouble,
    signers: dict[str, Signer],
    datadir: Path,
    case: tuple[str, str, str, str],
) -> None:
    signature, hash_method, key_type, reason = case
    cert_uuid = store_cert(barbican, signers["RSA-PSS"].cert)
    image_id = await signed_image(client, signature, hash_method, key_type, cert_uuid)
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)
    assert barbican.calls == []


async def test_images_without_all_four_properties_are_not_verified(
    client: httpx.AsyncClient, barbican: BarbicanDouble
) -> None:
    """As in cursive: verification needs all four properties; an unsigned image, or one with
    only some of them, takes its data as before and Barbican is never asked."""
    plain = await new_image(client, {}, disk_format="raw", container_format="bare")
    partial = await new_image(
        client,
        {},
        disk_format="raw",
        container_format="bare",
        img_signature="c2ln",
        img_signature_hash_method="SHA-256",
        img_signature_key_type="RSA-PSS",
    )
    for image_id in (plain, partial):
        assert (await put(client, image_id)).status_code == 204
        shown = (await client.get(f"/v2/images/{image_id}")).json()
        assert (shown["status"], shown["size"]) == ("active", len(DATA))
    assert barbican.calls == []


async def test_barbican_failing_refuses_the_upload(
    client: httpx.AsyncClient, barbican: BarbicanDouble, signers: dict[str, Signer], datadir: Path
) -> None:
    """A key manager answering 503 (a fault the real one cannot be made to show on demand)
    refuses the upload: never data taken unverified."""
    signer = signers["RSA-PSS"]
    cert_uuid = store_cert(barbican, signer.cert)
    image_id = await signed_image(
        client, sign(signer.key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", cert_uuid
    )
    barbican.status_override = 503
    reason = f"Unable to retrieve certificate with ID: {cert_uuid}"
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)
    barbican.status_override = None
    assert (await put(client, image_id)).status_code == 204


async def test_without_a_user_token_the_certificate_cannot_be_read(
    make_settings: Any,
    client_for: Any,
    barbican: BarbicanDouble,
    signers: dict[str, Signer],
    datadir: Path,
) -> None:
    """noauth carries no token: Barbican is not asked with the service's instead."""
    settings = make_settings(barbican={"barbican_endpoint": barbican.url})
    client: httpx.AsyncClient = await client_for(settings)
    signer = signers["RSA-PSS"]
    cert_uuid = store_cert(barbican, signer.cert, project="admin")
    image_id = await signed_image(
        client, sign(signer.key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", cert_uuid
    )
    reason = f"Unable to retrieve certificate with ID: {cert_uuid}"
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)
    assert barbican.calls == []


async def test_the_data_streams_while_barbican_is_asked(
    client: httpx.AsyncClient, barbican: BarbicanDouble, signers: dict[str, Signer]
) -> None:
    """The certificate is fetched while the data arrives, not before: all of it is taken while
    Barbican holds its answer, and the image is verified once Barbican gives it."""
    signer = signers["RSA-PSS"]
    cert_uuid = store_cert(barbican, signer.cert)
    image_id = await signed_image(
        client, sign(signer.key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", cert_uuid
    )
    barbican.answering.clear()
    unanswered_at_end: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(DATA), 256 * 1024):
            yield DATA[start : start + 256 * 1024]
        unanswered_at_end.append(not barbican.answering.is_set())
        barbican.answering.set()

    response = await client.put(f"/v2/images/{image_id}/file", content=body(), headers=OCTET)
    assert response.status_code == 204, response.text
    assert unanswered_at_end == [True]
    shown = (await client.get(f"/v2/images/{image_id}")).json()
    assert (shown["status"], shown["size"]) == ("active", len(DATA))


async def test_a_refused_certificate_stops_the_data(
    client: httpx.AsyncClient, barbican: BarbicanDouble, signers: dict[str, Signer], datadir: Path
) -> None:
    """Once Barbican has no such certificate, the upload takes no more data: it answers 400
    with the data it took removed and the image queued, the body left unread."""
    missing = str(uuid.uuid4())
    image_id = await signed_image(
        client, sign(signers["RSA-PSS"].key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", missing
    )
    offered = 1024  # MiB: far more than an upload takes before Barbican's answer arrives
    sent: list[int] = []
    piece = bytes(MiB)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(offered):
            sent.append(len(piece))
            yield piece

    response = await client.put(f"/v2/images/{image_id}/file", content=body(), headers=OCTET)
    await assert_refused(
        client, image_id, response, f"Certificate not found with ID: {missing}", datadir
    )
    assert [(call.method, call.status) for call in barbican.calls] == [("GET", 404)]
    assert len(sent) < offered


async def test_a_refused_certificate_is_answered_before_the_data_s_own_failure(
    make_settings: Any,
    client_for: Any,
    barbican: BarbicanDouble,
    signers: dict[str, Signer],
    datadir: Path,
) -> None:
    """As in Glance, which takes no data before the certificate is checked: data past
    image_size_cap (413) with a certificate Barbican does not have is refused for the
    certificate (400)."""
    settings = make_settings(
        auth_strategy="trusted-proxy",
        barbican={"barbican_endpoint": barbican.url},
        image_size_cap=MiB,
    )
    client: httpx.AsyncClient = await client_for(settings)
    client.headers.update({**OWNER, "X-Auth-Token": "owner-token"})
    missing = str(uuid.uuid4())
    image_id = await signed_image(
        client, sign(signers["RSA-PSS"].key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", missing
    )
    reason = f"Certificate not found with ID: {missing}"
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)
