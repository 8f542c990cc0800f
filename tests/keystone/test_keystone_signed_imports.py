"""Signed images imported through a real glimpse-worker process, with the real Keystone and
Barbican: the worker reads the certificate with the importing user's token (which the task
carries sealed, never shown and dropped when the task ends) and verifies the staged data before
any store is written. glance-direct and web-download into two stores, for each key type (and a
hash each), good and bad signatures; a missing certificate; copy-image of a verified image (its
data is not verified again).

A failed verification fails the task with the reason, leaves no data in any store nor in
staging, and the image queued again (Glance's revert of an import).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from barbican_server import BarbicanEnv
from cryptography.fernet import Fernet
from keystone_server import KeystoneEnv

from signing import KEY_TYPES, Signer, make_signers, sign
from store_servers import HttpServer, serving_http
from topology import Topology, topology, wait_for

pytestmark = pytest.mark.keystone

OCTET = {"Content-Type": "application/octet-stream"}
DATA = bytes(range(256)) * 2048 + b"signed tail"  # 512 KiB and a bit
# Each key type with another hash method: all four hashes are imported once.
HASH_FOR = dict(zip(KEY_TYPES, ("SHA-224", "SHA-256", "SHA-384", "SHA-512"), strict=False))
STORES = ("fast", "warm")


def live_conf(workdir: Path, keystone: KeystoneEnv, barbican: BarbicanEnv, web: str) -> list[str]:
    return [
        "[DEFAULT]",
        "enabled_backends = fast:file, warm:file",
        "[glance_store]",
        "default_backend = fast",
        *(f"[{store}]\nfilesystem_store_datadir = {workdir / store}" for store in STORES),
        "[os_glance_staging_store]",
        f"filesystem_store_datadir = {workdir / 'staging'}",
        "[os_glance_tasks_store]",
        f"filesystem_store_datadir = {workdir / 'tasks'}",
        "[import_filtering_opts]",
        "allowed_hosts = localhost",
        f"allowed_ports = {urlsplit(web).port}",
        "[database]",
        f"connection = sqlite:///{workdir / 'glimpse.sqlite'}",
        "[celery]",
        "broker_url = filesystem://",
        f"broker_data_dir = {workdir / 'broker'}",
        "worker_concurrency = 1",
        "[keystone_authtoken]",
        f"auth_url = {keystone.url}",
        f"www_authenticate_uri = {keystone.url.removesuffix('/v3')}",
        "auth_type = password",
        f"username = {keystone.service.name}",
        f"password = {keystone.service.password}",
        f"project_name = {keystone.service.project}",
        "user_domain_name = Default",
        "project_domain_name = Default",
        "[paste_deploy]",
        "flavor = keystone",
        "[barbican]",
        f"barbican_endpoint = {barbican.url}",
        "[key_manager]",
        f"token_encryption_key = {Fernet.generate_key().decode()}",
    ]


@pytest.fixture(scope="module")
def signers() -> dict[str, Signer]:
    return make_signers()


class Rig:
    def __init__(self, topo: Topology, client: httpx.Client, barbican: BarbicanEnv, token: str):
        self.topo, self.client, self.barbican, self.token = topo, client, barbican, token

    def signed_image(self, signer: Signer, key_type: str, hash_method: str, data: bytes) -> str:
        cert_uuid = self.barbican.secrets.store(self.token, signer.cert, "certificate")
        return self.image_signed_with(
            sign(signer.key, data, hash_method), hash_method, key_type, cert_uuid
        )

    def image_signed_with(
        self, signature: str, hash_method: str, key_type: str, cert_uuid: str
    ) -> str:
        body = {
            "disk_format": "raw",
            "container_format": "bare",
            "img_signature": signature,
            "img_signature_hash_method": hash_method,
            "img_signature_key_type": key_type,
            "img_signature_certificate_uuid": cert_uuid,
        }
        created = self.client.post("/v2/images", json=body)
        assert created.status_code == 201, created.text
        image_id: str = created.json()["id"]
        return image_id

    def stage(self, image_id: str, data: bytes = DATA) -> None:
        staged = self.client.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTET)
        assert staged.status_code == 204, staged.text

    def start(
        self, image_id: str, method: dict[str, str], token: str | None = None, **body: Any
    ) -> None:
        body = {"method": method, "stores": list(STORES), **body}
        headers = {"X-Auth-Token": token} if token else {}
        started = self.client.post(f"/v2/images/{image_id}/import", json=body, headers=headers)
        assert started.status_code == 202, started.text

    def finished_task(
        self, image_id: str, count: int = 1, token: str | None = None
    ) -> dict[str, Any]:
        """The image's newest task once `count` of those the token sees have finished."""
        headers = {"X-Auth-Token": token} if token else {}

        def finished() -> dict[str, Any] | None:
            listed = self.client.get(f"/v2/images/{image_id}/tasks", headers=headers)
            tasks = listed.json()["tasks"]
            done = [t for t in tasks if t["status"] in {"success", "failure"}]
            return max(done, key=lambda t: t["created_at"]) if len(done) == count else None

        try:
            return wait_for(f"task {count} of {image_id}", finished)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.topo.logs()}") from None

    def image(self, image_id: str) -> dict[str, Any]:
        image: dict[str, Any] = self.client.get(f"/v2/images/{image_id}").json()
        return image

    def files(self, directory: str) -> list[str]:
        path = self.topo.workdir / directory
        return sorted(p.name for p in path.iterdir()) if path.exists() else []


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    with serving_http(tmp_path_factory.mktemp("web") / "root") as server:
        yield server


@pytest.fixture(scope="module")
def rig(
    tmp_path_factory: pytest.TempPathFactory,
    keystone: KeystoneEnv,
    barbican_server: BarbicanEnv,
    web_server: HttpServer,
) -> Iterator[Rig]:
    """One API and one worker for the module (each test works on images of its own)."""
    workdir = tmp_path_factory.mktemp("signed-imports")
    web = f"http://localhost:{urlsplit(web_server.base).port}"
    token = keystone.token(keystone.alice)
    with (
        topology(workdir, live_conf(workdir, keystone, barbican_server, web)) as topo,
        httpx.Client(base_url=topo.url, timeout=60, headers={"X-Auth-Token": token}) as client,
    ):
        topo.start_api()
        topo.start_worker()
        yield Rig(topo, client, barbican_server, token)


def assert_failed_clean(rig: Rig, image_id: str, task: dict[str, Any], reason: str) -> None:
    assert task["status"] == "failure", task
    assert task["message"].startswith(f"Signature verification failed for image {image_id}: ")
    assert reason in task["message"]
    image = rig.image(image_id)
    assert (image["status"], image["size"], image["checksum"]) == ("queued", None, None)
    for directory in (*STORES, "staging"):  # no data of the image left anywhere
        assert [name for name in rig.files(directory) if image_id in name] == [], directory


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_glance_direct_verifies_in_the_worker(
    rig: Rig, signers: dict[str, Signer], key_type: str
) -> None:
    signer, hash_method = signers[key_type], HASH_FOR[key_type]
    good = rig.signed_image(signer, key_type, hash_method, DATA)
    rig.stage(good)
    rig.start(good, {"name": "glance-direct"})
    task = rig.finished_task(good)
    assert task["status"] == "success", (task, rig.topo.logs())
    assert "user_token" not in task["input"]
    image = rig.image(good)
    assert (image["status"], image["size"]) == ("active", len(DATA))
    assert sorted(image["stores"].split(",")) == sorted(STORES)
    assert rig.client.get(f"/v2/images/{good}/file").content == DATA

    bad = rig.signed_image(signer, key_type, hash_method, DATA)
    rig.stage(bad, DATA[:-1] + b"!")  # not the data signed
    rig.start(bad, {"name": "glance-direct"})
    task = rig.finished_task(bad)
    assert_failed_clean(rig, bad, task, "Signature verification failed")
    # The good image's data is in each store.
    assert good in rig.files("fast")
    assert good in rig.files("warm")


def test_web_download_verifies_in_the_worker(
    rig: Rig, signers: dict[str, Signer], web_server: HttpServer
) -> None:
    (web_server.root / "signed.raw").write_bytes(DATA)
    (web_server.root / "tampered.raw").write_bytes(DATA + b"appended")
    base = f"http://localhost:{urlsplit(web_server.base).port}"
    signer = signers["ECC_SECP521R1"]
    good = rig.signed_image(signer, "ECC_SECP521R1", "SHA-512", DATA)
    rig.start(good, {"name": "web-download", "uri": f"{base}/files/signed.raw"})
    assert rig.finished_task(good)["status"] == "success", rig.topo.logs()
    assert rig.image(good)["status"] == "active"

    bad = rig.signed_image(signer, "ECC_SECP521R1", "SHA-512", DATA)
    rig.start(bad, {"name": "web-download", "uri": f"{base}/files/tampered.raw"})
    assert_failed_clean(rig, bad, rig.finished_task(bad), "Signature verification failed")


def test_a_missing_certificate_fails_the_import(rig: Rig, signers: dict[str, Signer]) -> None:
    missing = "0b6a6a4e-6c1e-4b8e-9f59-1b6f0e3f3a11"
    signature = sign(signers["RSA-PSS"].key, DATA, "SHA-256")
    image_id = rig.image_signed_with(signature, "SHA-256", "RSA-PSS", missing)
    rig.stage(image_id)
    rig.start(image_id, {"name": "glance-direct"})
    task = rig.finished_task(image_id)
    assert_failed_clean(rig, image_id, task, f"Certificate not found with ID: {missing}")
    assert rig.barbican.requests(missing) == [("GET", f"/v1/secrets/{missing}", 404)]


def test_copy_image_keeps_the_verified_data(
    rig: Rig, keystone: KeystoneEnv, signers: dict[str, Signer]
) -> None:
    """copy-image (an admin's, by default policy) copies data verified when it was imported:
    Barbican is not asked again."""
    signer = signers["DSA"]
    cert_uuid = rig.barbican.secrets.store(rig.token, signer.cert, "certificate")
    image_id = rig.image_signed_with(sign(signer.key, DATA, "SHA-256"), "SHA-256", "DSA", cert_uuid)
    rig.stage(image_id)
    rig.start(image_id, {"name": "glance-direct"}, stores=["fast"])
    assert rig.finished_task(image_id)["status"] == "success", rig.topo.logs()
    reads = len(rig.barbican.requests(cert_uuid))
    admin = keystone.token(keystone.root)
    rig.start(image_id, {"name": "copy-image"}, admin, stores=["warm"])
    # The admin sees both tasks of the image (alice only her own).
    assert rig.finished_task(image_id, 2, admin)["status"] == "success", rig.topo.logs()
    assert sorted(rig.image(image_id)["stores"].split(",")) == sorted(STORES)
    assert len(rig.barbican.requests(cert_uuid)) == reads == 2
