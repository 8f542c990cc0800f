"""`make bench BENCH=signatures`: upload throughput with and without signature verification.

Starts a real Keystone and Barbican (the test suite's, from tests/keystone: their own
virtualenvs under .cache/) and `glimpse-api` with Keystone authentication, on SQLite and the
file store in a temporary directory. A user stores an RSA-PSS certificate in Barbican; images
of BENCH_SIGNED_MIB (default 256) are uploaded unsigned and signed (SHA-256), BENCH_ROUNDS
(default 3) times each, alternating. Prints a Markdown table: the best and median MiB/s of
each, and what verification costs. A benchmark, not a test: exit 0 unless the run fails.
"""

from __future__ import annotations

import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "keystone"))

from barbican_server import start_barbican  # noqa: E402 -- after the path above
from keystone_server import (  # noqa: E402 -- after the path above
    KeystoneAdmin,
    User,
    ensure_venv,
    free_port,
    start_keystone,
)

from signing import certificate  # noqa: E402 -- after the path above

MiB = 1024 * 1024
SIZE = int(os.environ.get("BENCH_SIGNED_MIB", "256")) * MiB
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CHUNK = MiB
PATTERN = bytes(range(256)) * (CHUNK // 256)
START_WITHIN = 120.0


def chunks(total: int) -> Iterator[bytes]:
    left = total
    while left:
        piece = PATTERN[: min(CHUNK, left)]
        left -= len(piece)
        yield piece


def signature(key: rsa.RSAPrivateKey, total: int) -> str:
    """RSA-PSS over SHA-256 of the pattern, hashed as it streams (never all in memory)."""
    digest = hashes.Hash(hashes.SHA256())
    for piece in chunks(total):
        digest.update(piece)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    signed = key.sign(digest.finalize(), pss, utils.Prehashed(hashes.SHA256()))
    return base64.b64encode(signed).decode()


def start_api(
    workdir: Path, keystone_url: str, service: User, barbican_url: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = workdir / "glance-api.conf"
    conf.write_text(
        "\n".join(
            [
                "[DEFAULT]",
                "bind_host = 127.0.0.1",
                f"bind_port = {port}",
                "[database]",
                f"connection = sqlite:///{workdir / 'bench.sqlite'}",
                "[glance_store]",
                f"filesystem_store_datadir = {workdir / 'images'}",
                "[keystone_authtoken]",
                f"auth_url = {keystone_url}",
                "auth_type = password",
                f"username = {service.name}",
                f"password = {service.password}",
                f"project_name = {service.project}",
                "user_domain_name = Default",
                "project_domain_name = Default",
                "[paste_deploy]",
                "flavor = keystone",
                "[barbican]",
                f"barbican_endpoint = {barbican_url}",
            ]
        )
        + "\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLIMPSE_")}
    env |= {"GLIMPSE_CONFIG": str(conf), "GLIMPSE_LOG_LEVEL": "WARNING"}
    bin_dir = Path(sys.executable).parent
    synced = subprocess.run(
        [str(bin_dir / "glimpse-manage"), "db", "sync"], env=env, capture_output=True, check=False
    )
    if synced.returncode != 0:
        raise SystemExit(synced.stderr.decode(errors="replace"))
    log = (workdir / "glimpse-api.log").open("wb")
    process = subprocess.Popen(
        [str(bin_dir / "glimpse-api")], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_WITHIN
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit((workdir / "glimpse-api.log").read_text(errors="replace")[-4000:])
        try:
            if httpx.get(f"{base}/versions", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("glimpse-api did not answer")


def upload(client: httpx.Client, properties: dict[str, str]) -> float:
    """Create an image, upload SIZE bytes; MiB/s of the upload."""
    body = {"disk_format": "raw", "container_format": "bare", **properties}
    image_id = client.post("/v2/images", json=body).json()["id"]
    started = time.perf_counter()
    response = client.put(
        f"/v2/images/{image_id}/file",
        content=chunks(SIZE),
        headers={"Content-Type": "application/octet-stream"},
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 204:
        raise SystemExit(f"upload answered {response.status_code}: {response.text}")
    client.delete(f"/v2/images/{image_id}")
    return SIZE / MiB / elapsed


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="glimpse-bench-signatures-"))
    keystone = barbican = api = None
    try:
        keystone = start_keystone(ensure_venv(), workdir / "keystone")
        admin = KeystoneAdmin(keystone.url)
        admin.login()
        admin.fix_identity_endpoint()
        service = admin.user("glimpse", "service", ["service", "admin"])
        alice = admin.user("alice", "alpha", ["member", "reader"])
        (workdir / "barbican").mkdir()
        barbican = start_barbican(workdir / "barbican", keystone.url, service)
        api, base = start_api(workdir, keystone.url, service, barbican.url)
        token = admin.token_for(alice)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        stored = httpx.post(
            f"{barbican.url}/v1/secrets",
            json={
                "secret_type": "certificate",
                "payload": base64.b64encode(certificate(key)).decode(),
                "payload_content_type": "application/octet-stream",
                "payload_content_encoding": "base64",
            },
            headers={"X-Auth-Token": token},
            timeout=30,
        )
        cert_uuid = stored.json()["secret_ref"].rsplit("/", 1)[1]
        signed = {
            "img_signature": signature(key, SIZE),
            "img_signature_hash_method": "SHA-256",
            "img_signature_key_type": "RSA-PSS",
            "img_signature_certificate_uuid": cert_uuid,
        }
        rates: dict[str, list[float]] = {"unsigned": [], "signed (RSA-PSS, SHA-256)": []}
        with httpx.Client(base_url=base, timeout=600, headers={"X-Auth-Token": token}) as client:
            for _ in range(ROUNDS):
                rates["unsigned"].append(upload(client, {}))
                rates["signed (RSA-PSS, SHA-256)"].append(upload(client, signed))
        report(rates)
    finally:
        for process in (api,):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        for server in (barbican, keystone):
            if server is not None:
                server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def report(rates: dict[str, list[float]]) -> None:
    print(f"## Upload throughput with signature verification ({SIZE // MiB} MiB, {ROUNDS} rounds)")
    print()
    print("| upload | best MiB/s | median MiB/s |")
    print("| --- | ---: | ---: |")
    for name, samples in rates.items():
        print(f"| {name} | {max(samples):.0f} | {statistics.median(samples):.0f} |")
    plain, verified = (statistics.median(samples) for samples in rates.values())
    print()
    print(f"Verification costs {100 * (1 - verified / plain):.1f}% of the median upload rate.")


if __name__ == "__main__":
    main()
