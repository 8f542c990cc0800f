"""Signing in the tests: keys of each type verification knows, self-signed X.509 certificates
(DER, as castellan stores them) and signatures as Glance's users make them (cursive's scheme)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa, utils
from cryptography.x509.oid import NameOID

from glimpse.services.signatures import ECC_CURVES

HASHES: dict[str, hashes.HashAlgorithm] = {
    "SHA-224": hashes.SHA224(),
    "SHA-256": hashes.SHA256(),
    "SHA-384": hashes.SHA384(),
    "SHA-512": hashes.SHA512(),
}
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | dsa.DSAPrivateKey


def make_key(key_type: str) -> PrivateKey:
    if key_type == "RSA-PSS":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "DSA":
        return dsa.generate_private_key(key_size=2048)
    curve = getattr(ec, ECC_CURVES[key_type].upper())()
    return ec.generate_private_key(curve)


def sign(key: PrivateKey, data: bytes, hash_method: str) -> str:
    hasher = hashes.Hash(HASHES[hash_method])
    hasher.update(data)
    return sign_digest(key, hasher.finalize(), hash_method)


def sign_digest(key: PrivateKey, digest: bytes, hash_method: str) -> str:
    """cursive's scheme over data already hashed with `hash_method`: RSA-PSS (MGF1, largest
    salt), ECDSA, DSA."""
    algorithm = HASHES[hash_method]
    prehashed = utils.Prehashed(algorithm)
    if isinstance(key, rsa.RSAPrivateKey):
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.MAX_LENGTH)
        signature = key.sign(digest, pss, prehashed)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(digest, ec.ECDSA(prehashed))
    else:
        signature = key.sign(digest, prehashed)
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


# Every key type verification knows: RSA-PSS, DSA and each ECC curve cryptography still has.
KEY_TYPES = ("RSA-PSS", "DSA", *ECC_CURVES)


def make_signers() -> dict[str, Signer]:
    made = {}
    for key_type in KEY_TYPES:
        key = make_key(key_type)
        made[key_type] = Signer(key, certificate(key))
    return made
