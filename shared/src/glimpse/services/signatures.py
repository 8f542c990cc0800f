"""Image signature verification, with the semantics of OpenStack's cursive library.

An image carrying all four of `img_signature` (base64), `img_signature_hash_method` (SHA-224,
SHA-256, SHA-384, SHA-512), `img_signature_key_type` (RSA-PSS, DSA, ECC_<curve>) and
`img_signature_certificate_uuid` has its data verified as it arrives; an image missing any of
them is not verified at all (as in cursive). The signature covers the image data hashed with
the named method: RSA-PSS with MGF1 of that hash and the largest salt, ECDSA, or DSA. The
X.509 certificate is read from Barbican by its uuid with the caller's token (DER, as castellan
stores it; PEM is taken too), and must be valid now (not before / not after) and, when it has
a key usage extension, allow digital signatures; its public key must be of the named type.

Every failure is a SignatureFailed (400) whose message names the reason; the caller removes
whatever data it stored and hands the image back.

The signature's digest comes from the pass that computes the image's checksum and multihash
(glimpse.stores.metering): with the default multihash (sha512) and SHA-512 signatures it is the
multihash itself, so verifying costs no extra hashing. The properties are checked before any
data is taken; the certificate is fetched and checked while the data streams (a task begun with
the upload), so its round trips cost no throughput. Its failure stops the data and is what the
upload answers, even when the data failed too: as in Glance, where no data is read before the
certificate is checked. Imports (glance-direct, web-download) are verified by the worker, in the
pass that hashes the staged data before any store is written.
The worker reads the certificate in the importing user's name too: the import task carries
the user's token, Fernet-sealed with `[key_manager] token_encryption_key` (as
glance-download's does), dropped when the task ends.
Without that key, or a token, the certificate cannot be read and the import fails.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa, utils

from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.domain.errors import InvalidInput
from glimpse.keymanager.barbican import BarbicanClient, BarbicanError, SecretNotFound
from glimpse.keymanager.sealing import TokenSealer
from glimpse.net.session import session_client
from glimpse.stores.metering import Meter

log = logging.getLogger(__name__)

SIGNATURE: Final = "img_signature"
HASH_METHOD: Final = "img_signature_hash_method"
KEY_TYPE: Final = "img_signature_key_type"
CERT_UUID: Final = "img_signature_certificate_uuid"
PROPERTIES: Final = (SIGNATURE, HASH_METHOD, KEY_TYPE, CERT_UUID)

HASH_METHODS: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "SHA-224": hashes.SHA224,
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}
RSA_PSS: Final = "RSA-PSS"
DSA: Final = "DSA"
# cursive's curves; the binary (SECT*) ones exist only while cryptography still has them.
_CURVE_NAMES: Final = ("SECT571K1", "SECT409K1", "SECT571R1", "SECT409R1", "SECP521R1", "SECP384R1")
ECC_CURVES: Final[dict[str, str]] = {
    f"ECC_{name}": name.lower() for name in _CURVE_NAMES if hasattr(ec, name)
}
X509_TYPE: Final = "certificate"
HTTP_TIMEOUT: Final = 30.0  # seconds per socket wait when [keystone_authtoken] sets none
# A signature is at most a few hundred bytes; a larger property is not decoded.
MAX_SIGNATURE_CHARS: Final = 8192


class SignatureFailed(InvalidInput):
    """The image's signature could not be verified (400); the message says why."""


def for_image(image_id: str, reason: SignatureFailed) -> SignatureFailed:
    """The error an upload answers, naming the image and the reason, as Glance words it."""
    log.warning("image %s: signature verification failed: %s", image_id, reason)
    return SignatureFailed(f"Signature verification failed for image {image_id}: {reason}")


class CertificateMissing(Exception):
    """The key manager has no such certificate (or none the caller may read)."""


class CertificateUnavailable(Exception):
    """The key manager could not be asked."""


# Reads a certificate's (secret type, payload) by uuid; raises the two exceptions above.
CertificateSource = Callable[[str], Awaitable[tuple[str, bytes]]]


@dataclass(frozen=True, slots=True)
class SignatureSpec:
    signature: str
    hash_method: str
    key_type: str
    certificate_uuid: str


def requested(properties: dict[str, str]) -> SignatureSpec | None:
    """The image's signature properties when all four are set, else None (not verified)."""
    if not all(properties.get(name) for name in PROPERTIES):
        return None
    return SignatureSpec(
        properties[SIGNATURE], properties[HASH_METHOD], properties[KEY_TYPE], properties[CERT_UUID]
    )


class Verification:
    """A signed image's check, begun as its data starts: the certificate's public key is
    fetched and checked by a task while the data passes `meter`, which computes the digest
    the signature is checked against (the multihash's own when the hash method is the same
    algorithm, as SHA-512 is by default; else a further hash in that pass)."""

    def __init__(
        self, algorithm: hashes.HashAlgorithm, signature: bytes, key: asyncio.Task[object]
    ) -> None:
        self._algorithm = algorithm
        self._signature = signature
        self._key = key
        self._meter: Meter | None = None

    def meter(self, hash_algo: str) -> Meter:
        """The Meter the data must pass (multihash `hash_algo`), computing this hash too."""
        # cryptography names its SHA-2 algorithms as hashlib does ("sha256").
        self._meter = Meter(hash_algo, also=(self._algorithm.name,))
        return self._meter

    async def guard(self, blocks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """`blocks` until the certificate is refused: then SignatureFailed, so no more data
        is taken for an image that cannot be verified."""
        async for block in blocks:
            if self._key.done() and not self._key.cancelled():
                failed = self._key.exception()
                if failed is not None:
                    raise failed
            yield block

    async def verify(self) -> None:
        """Raise SignatureFailed unless the certificate was good and the signature matches
        the data the meter saw (all of it: call this once the meter has finished)."""
        if self._meter is None:
            msg = "verify() before any data was metered"
            raise RuntimeError(msg)
        key = await self._key
        try:
            self._check(key, self._meter.digest(self._algorithm.name))
        except InvalidSignature:
            raise SignatureFailed("Signature verification failed") from None

    async def refusal(self, failure: BaseException) -> SignatureFailed | None:
        """Once the data's pass failed with `failure`: the certificate's own failure, which
        the caller answers instead (None: the certificate was good, or `failure` is the
        caller's cancellation, which stops the check too)."""
        if not isinstance(failure, Exception):
            self.close()
            return None
        with contextlib.suppress(Exception):
            await asyncio.shield(self._key)
        if self._key.cancelled():
            return None
        refused = self._key.exception()
        return refused if isinstance(refused, SignatureFailed) else None

    def close(self) -> None:
        """Stop the certificate's check if it still runs (the upload ended without it)."""
        if not self._key.done():
            self._key.cancel()
        elif not self._key.cancelled():
            self._key.exception()  # retrieved: its failure was answered, or another was

    def _check(self, key: object, digest: bytes) -> None:
        prehashed = utils.Prehashed(self._algorithm)
        if isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(self._algorithm), salt_length=padding.PSS.MAX_LENGTH)
            key.verify(self._signature, digest, pss, prehashed)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(self._signature, digest, ec.ECDSA(prehashed))
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(self._signature, digest, prehashed)
        else:  # _public_key admits no other key
            raise InvalidSignature


async def verify(verification: Verification, image_id: str) -> None:
    """Check an upload's signature once all its data has passed."""
    try:
        await verification.verify()
    except SignatureFailed as exc:
        raise for_image(image_id, exc) from None
    log.info("image %s: signature verified", image_id)


async def refuse_unverified(
    verification: Verification | None, image_id: str, failure: BaseException
) -> None:
    """Raise the certificate's refusal (as an upload answers it) in place of `failure`, the
    data pass's own: what Glance answers, reading no data before the certificate is checked."""
    if verification is None:
        return
    refused = await verification.refusal(failure)
    if refused is not None:
        raise for_image(image_id, refused) from None


def _decoded(signature: str) -> bytes:
    if len(signature) > MAX_SIGNATURE_CHARS:
        raise SignatureFailed("The signature data was not properly encoded using base64")
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFailed("The signature data was not properly encoded using base64") from None


def _certificate(secret_type: str, payload: bytes) -> x509.Certificate:
    if secret_type != X509_TYPE:
        raise SignatureFailed(f"Invalid certificate format: {secret_type or 'unknown'}")
    try:
        if payload.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(payload)
        return x509.load_der_x509_certificate(payload)
    except ValueError:
        raise SignatureFailed("Invalid certificate format: not an X.509 certificate") from None


def _check_certificate(cert: x509.Certificate, uuid: str, now: datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise SignatureFailed(
            f"Certificate {uuid} is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
        )
    if now > cert.not_valid_after_utc:
        raise SignatureFailed(
            f"Certificate {uuid} has expired: not valid after "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
        )
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.digital_signature:
        raise SignatureFailed(f"Certificate {uuid} does not allow digital signatures (key usage)")


def _key_matches(key: object, key_type: str) -> bool:
    if key_type == RSA_PSS:
        return isinstance(key, rsa.RSAPublicKey)
    if key_type == DSA:
        return isinstance(key, dsa.DSAPublicKey)
    return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == ECC_CURVES[key_type]


def begin(
    spec: SignatureSpec, source: CertificateSource, *, now: datetime | None = None
) -> Verification:
    """Check the properties (SignatureFailed now, before any data is taken), then begin
    fetching and checking the certificate: a Verification for the data to pass."""
    algorithm_type = HASH_METHODS.get(spec.hash_method)
    if algorithm_type is None:
        raise SignatureFailed(f"Invalid signature hash method: {spec.hash_method}")
    if spec.key_type not in (RSA_PSS, DSA, *ECC_CURVES):
        raise SignatureFailed(f"Invalid signature key type: {spec.key_type}")
    signature = _decoded(spec.signature)  # a malformed one fails before Barbican is asked
    key = asyncio.create_task(_public_key(spec, source, now), name="glimpse-certificate")
    return Verification(algorithm_type(), signature, key)


async def _public_key(
    spec: SignatureSpec, source: CertificateSource, now: datetime | None
) -> object:
    """The certificate's public key, once it is fetched and checked."""
    uuid = spec.certificate_uuid
    try:
        secret_type, payload = await source(uuid)
    except CertificateMissing:
        raise SignatureFailed(f"Certificate not found with ID: {uuid}") from None
    except CertificateUnavailable:
        raise SignatureFailed(f"Unable to retrieve certificate with ID: {uuid}") from None
    cert = _certificate(secret_type, payload)
    _check_certificate(cert, uuid, now or datetime.now(UTC))
    key = cert.public_key()
    if not _key_matches(key, spec.key_type):
        raise SignatureFailed(f"Invalid public key type for signature key type: {spec.key_type}")
    return key


def verification_for(
    settings: Settings, ctx: RequestContext, properties: dict[str, str]
) -> Verification | None:
    """The Verification an upload of an image with these properties needs, begun, or None.
    The certificate is read from Barbican in the caller's name (their token), never the
    service's: which certificates a user may sign with is Barbican's to decide."""
    return verification_with_token(settings, ctx.auth_token, properties)


def sealed_token(settings: Settings, ctx: RequestContext) -> str | None:
    """The caller's token, sealed for an import task's input (None: no token or key; the
    import then fails, unable to read the certificate)."""
    key = settings.key_manager.token_encryption_key
    if key is None:
        log.warning("signed image imported without [key_manager] token_encryption_key")
    if key is None or not ctx.auth_token:
        return None
    return TokenSealer(key).seal(ctx.auth_token)


def unsealed_token(settings: Settings, sealed: str | None) -> str | None:
    """The token an import task carries, or None (none, or sealed with another key)."""
    key = settings.key_manager.token_encryption_key
    if key is None or sealed is None:
        return None
    return TokenSealer(key).unseal(sealed)


def verification_with_token(
    settings: Settings, token: str | None, properties: dict[str, str]
) -> Verification | None:
    """verification_for with the user's token itself (the worker's, unsealed from its task)."""
    spec = requested(properties)
    if spec is None:
        return None
    keystone = settings.keystone_authtoken
    options = settings.barbican
    timeout = keystone.timeout if keystone.timeout is not None else HTTP_TIMEOUT

    async def from_barbican(uuid: str) -> tuple[str, bytes]:
        if settings.key_manager.backend != "barbican" or not options.barbican_endpoint:
            raise CertificateUnavailable
        if not token:
            raise CertificateUnavailable
        async with session_client(
            keystone,
            timeout=timeout,
            verify=options.verify_ssl,
            cafile=options.verify_ssl_path if options.verify_ssl else None,
        ) as http:
            client = BarbicanClient(options, http, deadline=2 * timeout)
            try:
                secret = await client.get_secret(token, uuid)
            except SecretNotFound:
                raise CertificateMissing from None
            except BarbicanError as exc:
                log.warning("certificate %s unreadable: %s", uuid, exc)
                raise CertificateUnavailable from None
        return secret.secret_type, secret.payload

    return begin(spec, from_barbican)
