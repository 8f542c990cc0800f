"""`make bench BENCH=signatures`: upload throughput with and without signature verification.

Starts a real Keystone and Barbican (the test suite's, from tests/keystone: their own
virtualenvs under .cache/) and `glimpse-api` with Keystone authentication, on SQLite and the
file store in a temporary directory. A user stores an RSA-PSS, an ECC and a DSA certificate in
Barbican; images of BENCH_SIGNED_MIB (default 1024) are uploaded unsigned and signed with
RSA-PSS and each hash method (SHA-512 is the multihash's own; the others are one more hash in
the same pass), BENCH_ROUNDS (default 5) rounds: each signed upload between two unsigned ones,
the hash methods in the reverse order of the round before, so a shared machine's drift falls
on each alike. Prints a Markdown table: the best and median MiB/s of each, the API process's
CPU seconds per GiB (median), and what verification costs: against the unsigned median, and
the median over rounds of each signed upload against the mean of its two unsigned neighbours
(the steadier figure), beside the budget: verification may cost at most 5%. Then one signed
upload for each hash method with the ECC and DSA keys: whether it was verified (204, active)
and its cost (a single upload: noisier than the rounds).
A benchmark, not a test: exit 0 unless the run fails.
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
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes

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

from signing import HASHES, PrivateKey, certificate, make_key, sign_digest  # noqa: E402 -- after the path above

MiB = 1024 * 1024
SIZE = int(os.environ.get("BENCH_SIGNED_MIB", "1024")) * MiB
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
BUDGET = 5.0  # per cent of upload throughput that verification may cost
CHUNK = MiB
PATTERN = bytes(range(256)) * (CHUNK // 256)
START_WITHIN = 120.0
KEY_TYPES = ("RSA-PSS", "ECC_SECP384R1", "DSA")
UNSIGNED = "unsigned"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Sample:
    """One upload: MiB/s, and the API process's CPU seconds per GiB (None off Linux)."""

    rate: float
    cpu_per_gib: float | None


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds of a process, all its threads (Linux's /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def chunks(total: int) -> Iterator[bytes]:
    left = total
    while left:
        piece = PATTERN[: min(CHUNK, left)]
        left -= len(piece)
        yield piece


def digests(total: int) -> dict[str, bytes]:
    """The pattern's digest by each hash method, hashed as it streams (never all in memory)."""
    hashers = {name: hashes.Hash(algorithm) for name, algorithm in HASHES.items()}
    for piece in chunks(total):
        for hasher in hashers.values():
            hasher.update(piece)
    return {name: hasher.finalize() for name, hasher in hashers.items()}


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


def upload(client: httpx.Client, pid: int, properties: dict[str, str]) -> Sample | None:
    """Create an image, upload SIZE bytes; its Sample, None if it was refused (the signature
    not verified)."""
    body = {"disk_format": "raw", "container_format": "bare", **properties}
    image_id = client.post("/v2/images", json=body).json()["id"]
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    response = client.put(
        f"/v2/images/{image_id}/file",
        content=chunks(SIZE),
        headers={"Content-Type": "application/octet-stream"},
    )
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(pid)
    status = client.get(f"/v2/images/{image_id}").json()["status"]
    client.delete(f"/v2/images/{image_id}")
    if response.status_code == 400:
        return None
    if response.status_code != 204 or status != "active":
        raise SystemExit(f"upload answered {response.status_code} ({status}): {response.text}")
    cpu = None
    if cpu_before is not None and cpu_after is not None:
        cpu = (cpu_after - cpu_before) / (SIZE / 1024 / MiB)
    return Sample(SIZE / MiB / elapsed, cpu)


def store_certificate(barbican_url: str, token: str, key: PrivateKey) -> str:
    stored = httpx.post(
        f"{barbican_url}/v1/secrets",
        json={
            "secret_type": "certificate",
            "payload": base64.b64encode(certificate(key)).decode(),
            "payload_content_type": "application/octet-stream",
            "payload_content_encoding": "base64",
        },
        headers={"X-Auth-Token": token},
        timeout=30,
    )
    return str(stored.json()["secret_ref"].rsplit("/", 1)[1])


def signed_properties(
    key: PrivateKey, cert_uuid: str, key_type: str, hash_method: str, digest: bytes
) -> dict[str, str]:
    return {
        "img_signature": sign_digest(key, digest, hash_method),
        "img_signature_hash_method": hash_method,
        "img_signature_key_type": key_type,
        "img_signature_certificate_uuid": cert_uuid,
    }


def measure(
    client: httpx.Client, pid: int, keys: dict[str, PrivateKey], certs: dict[str, str]
) -> None:
    """The rounds (unsigned and RSA-PSS with each hash method), then the other key types with
    each hash method once; print both tables."""
    digest = digests(SIZE)

    def signed(key_type: str, hash_method: str) -> dict[str, str]:
        key, cert = keys[key_type], certs[key_type]
        return signed_properties(key, cert, key_type, hash_method, digest[hash_method])

    def verified(name: str, properties: dict[str, str]) -> Sample:
        sample = upload(client, pid, properties)
        if sample is None:
            raise SystemExit(f"{name}: the signature was not verified")
        return sample

    variants = {f"RSA-PSS, {hash_method}": signed("RSA-PSS", hash_method) for hash_method in HASHES}
    samples: dict[str, list[Sample]] = {UNSIGNED: []} | {name: [] for name in variants}
    paired: dict[str, list[float]] = {name: [] for name in variants}
    for round_number in range(ROUNDS):
        # Unsigned between every two signed: each signed upload is set against its neighbours.
        order = list(variants) if round_number % 2 == 0 else list(reversed(variants))
        before = verified(UNSIGNED, {})
        samples[UNSIGNED].append(before)
        for name in order:
            sample = verified(name, variants[name])
            after = verified(UNSIGNED, {})
            samples[name].append(sample)
            samples[UNSIGNED].append(after)
            paired[name].append(cost(sample.rate, (before.rate + after.rate) / 2))
            before = after
    matrix = {
        (key_type, hash_method): upload(client, pid, signed(key_type, hash_method))
        for key_type in KEY_TYPES[1:]
        for hash_method in HASHES
    }
    report(samples, paired)
    report_matrix(matrix, statistics.median(s.rate for s in samples[UNSIGNED]))


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
        keys = {key_type: make_key(key_type) for key_type in KEY_TYPES}
        certs = {name: store_certificate(barbican.url, token, key) for name, key in keys.items()}
        with httpx.Client(base_url=base, timeout=600, headers={"X-Auth-Token": token}) as client:
            measure(client, api.pid, keys, certs)
    finally:
        for process in (api,):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        for server in (barbican, keystone):
            if server is not None:
                server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def cost(rate: float, plain: float) -> float:
    """Per cent of the unsigned throughput that verification costs."""
    return 100 * (1 - rate / plain)


def report(samples: dict[str, list[Sample]], paired: dict[str, list[float]]) -> None:
    print(
        f"## Upload throughput with signature verification ({SIZE // MiB} MiB, {ROUNDS} rounds, "
        "an unsigned upload between every two signed)"
    )
    print()
    print(
        "| upload | uploads | best MiB/s | median MiB/s | CPU s/GiB | cost (medians) "
        f"| cost (paired, median) | within {BUDGET:.0f}% |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    plain = statistics.median(s.rate for s in samples[UNSIGNED])
    for name, taken in samples.items():
        median = statistics.median(s.rate for s in taken)
        cpus = [s.cpu_per_gib for s in taken if s.cpu_per_gib is not None]
        cpu = f"{statistics.median(cpus):.2f}" if cpus else ""
        figures = (
            f"| {name} | {len(taken)} | {max(s.rate for s in taken):.0f} | {median:.0f} | {cpu}"
        )
        if name == UNSIGNED:
            print(f"{figures} | | | |")
            continue
        spent = statistics.median(paired[name])
        within = "yes" if spent <= BUDGET else "no"
        print(f"{figures} | {cost(median, plain):.1f}% | {spent:.1f}% | {within} |")
    print()


def report_matrix(matrix: dict[tuple[str, str], Sample | None], plain: float) -> None:
    print(
        f"## The other key types, each hash method (one upload each; unsigned median "
        f"{plain:.0f} MiB/s)"
    )
    print()
    print("| key type | hash method | verified | MiB/s | CPU s/GiB | cost |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for (key_type, hash_method), sample in matrix.items():
        if sample is None:
            print(f"| {key_type} | {hash_method} | no (400) | | | |")
            continue
        cpu = f"{sample.cpu_per_gib:.2f}" if sample.cpu_per_gib is not None else ""
        spent = cost(sample.rate, plain)
        print(f"| {key_type} | {hash_method} | yes | {sample.rate:.0f} | {cpu} | {spent:.1f}% |")


if __name__ == "__main__":
    main()
