"""A loopback TLS stand-in for the Identity and Key Manager calls Glimpse makes: POST and GET
/v3/auth/tokens (Keystone) and DELETE /v1/secrets/{id} (Barbican). Its certificate is signed
by a CA made for the test; it can demand a client certificate signed by the same CA, so a test
can tell whether certfile and keyfile were sent. It records each request's line and whether a
client certificate came with it."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SUBJECT_TOKEN = "standin-subject-token"


@dataclass(frozen=True)
class Pki:
    """PEM files: the CA, the server's certificate and key, and a client's (cert and key in
    separate files, and both in one)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_combined: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(folder: Path) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("Test CA", ca_key, None)
    files: dict[str, bytes] = {"ca.pem": ca.public_bytes(serialization.Encoding.PEM)}
    for role, server in (("server", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(f"{role}.test", key, (ca.subject, ca_key), server=server)
        files[f"{role}.pem"] = cert.public_bytes(serialization.Encoding.PEM)
        files[f"{role}.key"] = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    files["client-combined.pem"] = files["client.pem"] + files["client.key"]
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return Pki(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
        client_combined=folder / "client-combined.pem",
    )


def _token_body() -> bytes:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    token = {
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "user": {"id": "u-1", "domain": {"id": "default"}},
        "project": {"id": "p-1", "domain": {"id": "default"}},
        "roles": [{"name": "member"}, {"name": "reader"}, {"name": "service"}],
    }
    return json.dumps({"token": token}).encode()


@dataclass
class Standin:
    base: str
    requests: list[tuple[str, bool]] = field(default_factory=list)  # (line, client cert?)


class _Handler(BaseHTTPRequestHandler):
    standin: Standin
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:
        return

    def _record(self) -> None:
        assert isinstance(self.connection, ssl.SSLSocket)
        self.standin.requests.append((self.requestline, self.connection.getpeercert() is not None))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)

    def _answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in {**headers, "x-openstack-request-id": "req-standin-1"}.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self._record()
        self._answer(201, _token_body(), X_Subject_Token=SUBJECT_TOKEN)

    def do_GET(self) -> None:
        self._record()
        self._answer(200, _token_body())

    def do_DELETE(self) -> None:
        self._record()
        self._answer(204)


@contextlib.contextmanager
def tls_standin(pki: Pki, *, client_cert_required: bool) -> Iterator[Standin]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    context.load_verify_locations(str(pki.ca))
    context.verify_mode = ssl.CERT_REQUIRED if client_cert_required else ssl.CERT_OPTIONAL
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    standin = Standin(base=f"https://127.0.0.1:{server.server_port}")
    server.RequestHandlerClass = type("Handler", (_Handler,), {"standin": standin})
    thread = threading.Thread(target=server.serve_forever, name="tls-standin", daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
