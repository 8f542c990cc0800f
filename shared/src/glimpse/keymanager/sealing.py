"""Tokens kept at rest for pending key cleanups are Fernet-encrypted (AES-CBC + HMAC).

cryptography is imported when a sealer is built, that is only where `token_encryption_key` is
set: the scrubber of a deployment without it never loads the library.
"""

from __future__ import annotations

from pydantic import SecretStr


class TokenSealer:
    def __init__(self, key: SecretStr) -> None:
        from cryptography.fernet import Fernet  # noqa: PLC0415 -- as said above

        self._fernet = Fernet(key.get_secret_value().encode("ascii"))

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def unseal(self, sealed: str) -> str | None:
        """The token, or None when it was sealed with another key (rotated) or is damaged."""
        from cryptography.fernet import InvalidToken  # noqa: PLC0415 -- loaded by __init__

        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            return None
