"""Image signature verification on PUT /v2/images/{id}/file: images signed in the test with
keys and X.509 certificates made here (cryptography), for each hash method and key type, good
and bad (tampered data, wrong key, expired or not-yet-valid certificate, missing certificate,
wrong key type, key usage without digital signatures).

The certificates are served by tests/barbican_double.py, a loopback stand-in that speaks
Barbican's secrets HTTP API (metadata and payload), checking the caller's token and project.
This is a first slice: the real Barbican replaces it for these tests later (issue 21).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.oid import NameOID

from barbican_double import BarbicanDouble, TokenScope, running_barbican
from glimpse.config import Settings
from personas import OWNER, new_image

OCTET = {"Content-Type": "application/octet-stream"}
DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: several chunks
HASHES: dict[str, hashes.HashAlgorithm] = {
    "SHA-224": hashes.SHA224(),
    "SHA-256": hashes.SHA256(),
    "SHA-384": hashes.SHA384(),
    "SHA-512": hashes.SHA512(),
}
TOKENS = {"owner-token": "owner", "other-token": "other"}
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | dsa.DSAPrivateKey


def make_key(key_type: str) -> PrivateKey:
    if key_type == "RSA-PSS":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "DSA":
        return dsa.generate_private_key(key_size=2048)
    curve = {"ECC_SECP384R1": ec.SECP384R1(), "ECC_SECP521R1": ec.SECP521R1()}[key_type]
    return ec.generate_private_key(curve)


def sign(key: PrivateKey, data: bytes, hash_method: str) -> str:
    algorithm = HASHES[hash_method]
    if isinstance(key, rsa.RSAPrivateKey):
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.MAX_LENGTH)
        signature = key.sign(data, pss, algorithm)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(data, ec.ECDSA(algorithm))
    else:
        signature = key.sign(data, algorithm)
    return base64.b64encode(signature).decode()


def certificate(
    key: PrivateKey,
    *,
    valid_from: timedelta = timedelta(days=-1),
    valid_for: timedelta = timedelta(days=30),
    digital_signature: bool = True,
) -> bytes:
    """A self-signed certificate for `key` (DER, as castellan stores one)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "image signer")])
    start = datetime.now(UTC) + valid_from
    usage = x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not digital_signature,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + valid_for)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class Signer:
    key: PrivateKey
    cert: bytes


KEY_TYPES = ("RSA-PSS", "ECC_SECP384R1", "ECC_SECP521R1", "DSA")


@pytest.fixture(scope="module")
def signers() -> dict[str, Signer]:
    made = {}
    for key_type in KEY_TYPES:
        key = make_key(key_type)
        made[key_type] = Signer(key, certificate(key))
    return made


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


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("hash_method", sorted(HASHES))
async def test_a_good_signature_activates_the_image(
    client: httpx.AsyncClient,
    barbican: BarbicanDouble,
    signers: dict[str, Signer],
    key_type: str,
    hash_method: str,
) -> None:
    signer = signers[key_type]
    cert_uuid = store_cert(barbican, signer.cert)
    image_id = await signed_image(
        client, sign(signer.key, DATA, hash_method), hash_method, key_type, cert_uuid
    )
    response = await put(client, image_id)
    assert response.status_code == 204, response.text
    shown = (await client.get(f"/v2/images/{image_id}")).json()
    assert (shown["status"], shown["size"]) == ("active", len(DATA))
    body = (await client.get(f"/v2/images/{image_id}/file")).content
    assert body == DATA
    fetched = [(c.method, c.path, c.token, c.status) for c in barbican.calls]
    assert fetched == [
        ("GET", f"/v1/secrets/{cert_uuid}", "owner-token", 200),
        ("GET", f"/v1/secrets/{cert_uuid}/payload", "owner-token", 200),
    ]


@pytest.mark.parametrize("key_type", KEY_TYPES)
async def test_tampered_data_is_refused_and_removed(
    client: httpx.AsyncClient,
    barbican: BarbicanDouble,
    signers: dict[str, Signer],
    datadir: Path,
    key_type: str,
) -> None:
    signer = signers[key_type]
    cert_uuid = store_cert(barbican, signer.cert)
    signature = sign(signer.key, DATA, "SHA-256")
    image_id = await signed_image(client, signature, "SHA-256", key_type, cert_uuid)
    tampered = DATA[:-1] + b"!"
    await assert_refused(
        client,
        image_id,
        await put(client, image_id, tampered),
        "Signature verification failed",
        datadir,
    )
    # The image is queued again: the genuine data is then taken.
    assert (await put(client, image_id)).status_code == 204


async def test_a_signature_by_another_key_is_refused(
    client: httpx.AsyncClient, barbican: BarbicanDouble, signers: dict[str, Signer], datadir: Path
) -> None:
    cert_uuid = store_cert(barbican, signers["RSA-PSS"].cert)
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
    barbican: BarbicanDouble,
    signers: dict[str, Signer],
    datadir: Path,
    case: tuple[timedelta, timedelta, str],
) -> None:
    valid_from, valid_for, reason = case
    key = signers["ECC_SECP384R1"].key
    cert_uuid = store_cert(barbican, certificate(key, valid_from=valid_from, valid_for=valid_for))
    image_id = await signed_image(
        client, sign(key, DATA, "SHA-384"), "SHA-384", "ECC_SECP384R1", cert_uuid
    )
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)


async def test_a_certificate_without_digital_signature_usage_is_refused(
    client: httpx.AsyncClient, barbican: BarbicanDouble, signers: dict[str, Signer], datadir: Path
) -> None:
    key = signers["RSA-PSS"].key
    cert_uuid = store_cert(barbican, certificate(key, digital_signature=False))
    image_id = await signed_image(
        client, sign(key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", cert_uuid
    )
    reason = "does not allow digital signatures"
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)


async def test_a_missing_certificate_is_refused(
    client: httpx.AsyncClient, barbican: BarbicanDouble, signers: dict[str, Signer], datadir: Path
) -> None:
    missing = str(uuid.uuid4())
    signature = sign(signers["DSA"].key, DATA, "SHA-224")
    image_id = await signed_image(client, signature, "SHA-224", "DSA", missing)
    reason = f"Certificate not found with ID: {missing}"
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)
    assert [(c.path, c.status) for c in barbican.calls] == [(f"/v1/secrets/{missing}", 404)]


async def test_a_certificate_the_caller_may_not_read_is_refused(
    client: httpx.AsyncClient, barbican: BarbicanDouble, signers: dict[str, Signer], datadir: Path
) -> None:
    """Read with the caller's own token: another project's private certificate is not theirs."""
    signer = signers["RSA-PSS"]
    cert_uuid = barbican.add_secret(
        str(uuid.uuid4()), "other", kind="certificate", payload=signer.cert, private=True
    )
    image_id = await signed_image(
        client, sign(signer.key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", cert_uuid
    )
    reason = f"Unable to retrieve certificate with ID: {cert_uuid}"
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)
    assert [(c.token, c.project_id, c.status) for c in barbican.calls] == [
        ("owner-token", "owner", 403)
    ]


@pytest.mark.parametrize(
    "case",
    [
        (
            "RSA-PSS",
            "ECC_SECP384R1",
            "Invalid public key type for signature key type: ECC_SECP384R1",
        ),
        ("ECC_SECP521R1", "ECC_SECP384R1", "Invalid public key type for signature key type"),
        ("DSA", "RSA-PSS", "Invalid public key type for signature key type: RSA-PSS"),
    ],
)
async def test_a_key_of_another_type_is_refused(
    client: httpx.AsyncClient,
    barbican: BarbicanDouble,
    signers: dict[str, Signer],
    datadir: Path,
    case: tuple[str, str, str],
) -> None:
    cert_key, key_type, reason = case
    signer = signers[cert_key]
    cert_uuid = store_cert(barbican, signer.cert)
    image_id = await signed_image(
        client, sign(signer.key, DATA, "SHA-256"), "SHA-256", key_type, cert_uuid
    )
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)


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


async def test_a_secret_that_is_no_certificate_is_refused(
    client: httpx.AsyncClient, barbican: BarbicanDouble, signers: dict[str, Signer], datadir: Path
) -> None:
    signer = signers["RSA-PSS"]
    opaque = barbican.add_secret(str(uuid.uuid4()), "owner", payload=b"\x00" * 32)
    image_id = await signed_image(
        client, sign(signer.key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", opaque
    )
    reason = "Invalid certificate format: opaque"
    await assert_refused(client, image_id, await put(client, image_id), reason, datadir)


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


async def test_a_signed_image_is_not_imported_unverified(
    client: httpx.AsyncClient, barbican: BarbicanDouble, signers: dict[str, Signer]
) -> None:
    """Imports do not verify signatures yet: a signed image's import is refused (fail closed)
    rather than activated unchecked; the staged data stays for an upload or a delete."""
    signer = signers["RSA-PSS"]
    cert_uuid = store_cert(barbican, signer.cert)
    image_id = await signed_image(
        client, sign(signer.key, DATA, "SHA-256"), "SHA-256", "RSA-PSS", cert_uuid
    )
    staged = await client.put(f"/v2/images/{image_id}/stage", content=DATA, headers=OCTET)
    assert staged.status_code == 204, staged.text
    body = {"method": {"name": "glance-direct"}}
    response = await client.post(f"/v2/images/{image_id}/import", json=body)
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert message.startswith(f"Image {image_id} is signed (img_signature)")
    assert "glance-direct import method" in message
    shown = (await client.get(f"/v2/images/{image_id}")).json()
    assert shown["status"] == "uploading"
    assert "os_glance_import_task" not in shown
    assert barbican.calls == []
