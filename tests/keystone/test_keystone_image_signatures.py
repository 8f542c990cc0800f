"""Image signature verification on upload (PUT /v2/images/{id}/file) against the real Barbican
and Keystone: certificates made in the test (tests/signing.py) are stored in Barbican as
`certificate` secrets by the image's owner, and read back by Glimpse with the owner's token.
For each hash method and key type a good signature activates the image and a bad one is refused
(400 naming the reason, nothing stored, the image queued); then the certificate checks
(dates, key usage, key type, not a certificate, missing, another project's).

The faults a real Barbican cannot be made to show on demand (5xx) are in
tests/api/test_image_signatures.py, against tests/barbican_double.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from barbican_server import BarbicanEnv
from keystone_server import KeystoneEnv

from glimpse.config import Settings
from signing import HASHES, KEY_TYPES, Signer, certificate, make_key, make_signers, sign

pytestmark = pytest.mark.keystone

OCTET = {"Content-Type": "application/octet-stream"}
DATA = bytes(range(256)) * 1024 + b"tail"  # 256 KiB and a bit: several chunks


@pytest.fixture(scope="module")
def signers() -> dict[str, Signer]:
    return make_signers()


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], keystone: KeystoneEnv, barbican_server: BarbicanEnv
) -> Settings:
    made: Settings = make_settings(
        auth_strategy="keystone",
        keystone_authtoken=keystone.authtoken_section(),
        barbican={"barbican_endpoint": barbican_server.url},
    )
    return made


@pytest.fixture
def alice_token(keystone: KeystoneEnv) -> str:
    return keystone.token(keystone.alice)


@pytest.fixture
async def client(settings: Settings, client_for: Any, alice_token: str) -> httpx.AsyncClient:
    opened: httpx.AsyncClient = await client_for(settings)
    opened.headers.update({"X-Auth-Token": alice_token})
    return opened


@pytest.fixture
def datadir(settings: Settings) -> Path:
    return settings.store_datadir(settings.default_store)


@pytest.fixture
def store_cert(barbican_server: BarbicanEnv, alice_token: str) -> Callable[[bytes], str]:
    def store(der: bytes) -> str:
        return barbican_server.secrets.store(alice_token, der, "certificate")

    return store


async def signed_image(
    client: httpx.AsyncClient, signature: str, hash_method: str, key_type: str, cert_uuid: str
) -> str:
    body = {
        "disk_format": "raw",
        "container_format": "bare",
        "img_signature": signature,
        "img_signature_hash_method": hash_method,
        "img_signature_key_type": key_type,
        "img_signature_certificate_uuid": cert_uuid,
    }
    created = await client.post("/v2/images", json=body)
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    return image_id


async def put(client: httpx.AsyncClient, image_id: str, data: bytes = DATA) -> httpx.Response:
    return await client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)


def stored(datadir: Path) -> list[Path]:
    return sorted(datadir.iterdir()) if datadir.exists() else []


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


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("hash_method", sorted(HASHES))
async def test_good_and_bad_signatures_for_each_hash_and_key_type(  # noqa: PLR0917 -- fixtures
    client: httpx.AsyncClient,
    barbican_server: BarbicanEnv,
    store_cert: Callable[[bytes], str],
    signers: dict[str, Signer],
    datadir: Path,
    key_type: str,
    hash_method: str,
) -> None:
    signer = signers[key_type]
    cert_uuid = store_cert(signer.cert)
    signature = sign(signer.key, DATA, hash_method)
    # Bad: the data differs from what was signed by one byte.
    refused = await signed_image(client, signature, hash_method, key_type, cert_uuid)
    response = await put(client, refused, DATA[:-1] + b"!")
    await assert_refused(client, refused, response, "Signature verification failed", datadir)
    # Good: the very data signed.
    image_id = await signed_image(client, signature, hash_method, key_type, cert_uuid)
    response = await put(client, image_id)
    assert response.status_code == 204, response.text
    shown = (await client.get(f"/v2/images/{image_id}")).json()
    assert (shown["status"], shown["size"]) == ("active", len(DATA))
    assert (await client.get(f"/v2/images/{image_id}/file")).content == DATA
    # Both uploads read the certificate from Barbican: its metadata, then its payload.
    meta, payload = f"/v1/secrets/{cert_uuid}", f"/v1/secrets/{cert_uuid}/payload"
    reads = [(m, p, s) for m, p, s in barbican_server.requests(cert_uuid) if m == "GET"]
    assert reads == [("GET", meta, 200), ("GET", payload, 200)] * 2


async def test_a_signature_by_another_key_is_refused(
    client: httpx.AsyncClient,
    store_cert: Callable[[bytes], str],
    signers: dict[str, Signer],
    datadir: Path,
) -> None:
    cert_uuid = store_cert(signers["RSA-PSS"].cert)
    impostor = make_key("RSA-PSS")
    image_id = await signed_image(
        client, sign(impostor, DATA, "SHA-512"), "SHA-512", "RSA-PSS", cert_uuid
    )
    await assert_refused(
        client, image_id, await put(client, image_id), "Signature verification failed", datadir
    )


@pytest.mark.parametrize(
    "case",
    [
        (timedelta(days=-30), timedelta(days=29), "has expired: not valid after"),
        (timedelta(days=2), timedelta(days=30), "is not valid before"),
    ],
)
async def test_a_certificate_out_of_its_dates_is_refused(
    client: httpx.AsyncClient,
    store_cert: Callable[[bytes], str],
    signers: dict[str, Signer],
    datadir: Path,
    case: tuple[timedelta, timedelta, str],
) -> None:
    valid_from, valid_for, reason = case
    key = signers["ECC_SECP384R1"].key
    cert_uuid = store_cert(certificate(key, valid_from=valid_from, valid_for=valid_for))
    image_id = await signed_image(
        client, sign(key, DATA, "SHA-384"), "SHA-384", "ECC_SECP384R1", cert_uuid
    )
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)


async def test_a_certificate_without_digital_signature_usage_is_refused(
    client: httpx.AsyncClient,
    store_cert: Callable[[bytes], str],
    signers: dict[str, Signer],
    datadir: Path,
) -> None:
    key = signers["RSA-PSS"].key
    cert_uuid = store_cert(certificate(key, digital_signature=False))
    image_id = await signed_image(
        client, sign(key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", cert_uuid
    )
    reason = "does not allow digital signatures"
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)


@pytest.mark.parametrize(
    "case",
    [
        ("RSA-PSS", "ECC_SECP384R1", "Invalid public key type for signature key type"),
        ("ECC_SECP521R1", "ECC_SECP384R1", "Invalid public key type for signature key type"),
        ("DSA", "RSA-PSS", "Invalid public key type for signature key type: RSA-PSS"),
    ],
)
async def test_a_key_of_another_type_is_refused(
    client: httpx.AsyncClient,
    store_cert: Callable[[bytes], str],
    signers: dict[str, Signer],
    datadir: Path,
    case: tuple[str, str, str],
) -> None:
    cert_key, key_type, reason = case
    signer = signers[cert_key]
    cert_uuid = store_cert(signer.cert)
    image_id = await signed_image(
        client, sign(signer.key, DATA, "SHA-256"), "SHA-256", key_type, cert_uuid
    )
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)


async def test_a_secret_that_is_no_certificate_is_refused(
    client: httpx.AsyncClient,
    barbican_server: BarbicanEnv,
    alice_token: str,
    signers: dict[str, Signer],
    datadir: Path,
) -> None:
    opaque = barbican_server.secrets.store(alice_token, b"\x00" * 32, "opaque")
    signer = signers["RSA-PSS"]
    image_id = await signed_image(
        client, sign(signer.key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", opaque
    )
    reason = "Invalid certificate format: opaque"
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)


async def test_a_missing_certificate_is_refused(
    client: httpx.AsyncClient,
    barbican_server: BarbicanEnv,
    signers: dict[str, Signer],
    datadir: Path,
) -> None:
    missing = str(uuid.uuid4())
    image_id = await signed_image(
        client, sign(signers["DSA"].key, DATA, "SHA-224"), "SHA-224", "DSA", missing
    )
    reason = f"Certificate not found with ID: {missing}"
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)
    assert barbican_server.requests(missing) == [("GET", f"/v1/secrets/{missing}", 404)]


async def test_another_project_s_certificate_is_not_the_caller_s(
    client: httpx.AsyncClient,
    keystone: KeystoneEnv,
    barbican_server: BarbicanEnv,
    signers: dict[str, Signer],
    datadir: Path,
) -> None:
    """Read with the caller's own token: Barbican refuses alice a certificate of bob's project,
    and Glimpse never asks with its own (admin) token instead."""
    signer = signers["RSA-PSS"]
    cert_uuid = barbican_server.secrets.store(
        keystone.token(keystone.bob), signer.cert, "certificate"
    )
    image_id = await signed_image(
        client, sign(signer.key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", cert_uuid
    )
    reason = f"Unable to retrieve certificate with ID: {cert_uuid}"
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)
    # Bob's store shows only as the 201 naming it; then alice's refused read.
    assert barbican_server.requests(cert_uuid) == [("GET", f"/v1/secrets/{cert_uuid}", 403)]
