"""[key_manager] and [barbican] options, and the sealing of kept tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from glimpse.config import ConfigError, load_settings
from glimpse.keymanager.sealing import TokenSealer


def test_options_load_with_castellan_names(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    conf = tmp_path / "glance-api.conf"
    conf.write_text(
        "[key_manager]\n"
        "backend = barbican\n"
        f"token_encryption_key = {key}\n"
        "[barbican]\n"
        "barbican_endpoint = http://barbican:9311\n"
        "barbican_api_version = v1\n"
        "auth_endpoint = http://keystone:5000/v3\n"
        "verify_ssl = false\n"
    )
    settings = load_settings(conf)
    assert settings.key_manager.backend == "barbican"
    token_key = settings.key_manager.token_encryption_key
    assert token_key is not None
    assert token_key.get_secret_value() == key
    assert key not in repr(settings)
    assert settings.barbican.barbican_endpoint == "http://barbican:9311"
    assert settings.barbican.auth_endpoint == "http://keystone:5000/v3"
    assert settings.barbican.verify_ssl is False


def test_a_token_encryption_key_must_be_a_fernet_key(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[key_manager]\ntoken_encryption_key = not-a-key\n")
    with pytest.raises(ConfigError, match="token_encryption_key"):
        load_settings(conf)


def test_sealed_tokens_open_only_with_their_key() -> None:
    key = SecretStr(Fernet.generate_key().decode())
    sealed = TokenSealer(key).seal("gAAAA-user-token")
    assert "user-token" not in sealed
    assert TokenSealer(key).unseal(sealed) == "gAAAA-user-token"
    other = TokenSealer(SecretStr(Fernet.generate_key().decode()))
    assert other.unseal(sealed) is None  # a rotated key: the token is simply unavailable
    assert TokenSealer(key).unseal("garbage") is None
