"""Tokens kept at rest for pending key cleanups are Fernet-encrypted (AES-CBC + HMAC)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr


class TokenSealer:
    def __init__(self, key: SecretStr) -> None:
        self._fernet = Fernet(key.get_secret_value().encode("ascii"))

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def unseal(self, sealed: str) -> str | None:
        """The token, or None when it was sealed with another key (rotated) or is damaged."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            return None
