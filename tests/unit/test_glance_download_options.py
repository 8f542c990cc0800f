"""glance-download: its options, its parameters, and which remote properties it copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from glimpse.config import ConfigError, load_settings
from glimpse.domain.errors import InvalidInput
from glimpse.services.glance_download import glance_download_method
from glimpse_worker.pipelines.glance_download import copied_properties

IMAGE_ID = "36d4b546-64a2-4bb9-bdd0-ba676aa48f2c"


def test_glance_download_needs_a_token_encryption_key(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[DEFAULT]\nenabled_import_methods = [glance-direct,glance-download]\n")
    with pytest.raises(ConfigError, match="token_encryption_key"):
        load_settings(conf)
    key = Fernet.generate_key().decode()
    conf.write_text(conf.read_text() + f"[key_manager]\ntoken_encryption_key = {key}\n")
    assert "glance-download" in load_settings(conf).enabled_import_methods


def test_extra_properties_default_and_glance_notation(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text("")
    defaults = load_settings(conf).glance_download_properties.extra_properties
    assert defaults == ["hw_", "trait:", "os_distro", "os_secure_boot", "os_type"]
    conf.write_text("[glance_download_properties]\nextra_properties = ['os_', 'architecture']\n")
    options = load_settings(conf).glance_download_properties
    assert options.extra_properties == ["os_", "architecture"]


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ({"glance_image_id": IMAGE_ID}, "'glance_region' needs to be set"),
        ({"glance_region": "RegionTwo"}, "'glance_image_id' needs to be set"),
        ({"glance_region": "r", "glance_image_id": "foo"}, "image id does not look like a UUID"),
        ({"glance_region": 2, "glance_image_id": IMAGE_ID}, "'glance_region' must be a string"),
    ],
)
def test_parameters_are_refused(method: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected):
        glance_download_method(method)


def test_the_interface_defaults_to_public() -> None:
    checked = glance_download_method({"glance_region": "RegionTwo", "glance_image_id": IMAGE_ID})
    assert checked == {
        "glance_image_id": IMAGE_ID,
        "glance_region": "RegionTwo",
        "glance_service_interface": "public",
    }


def test_only_prefixed_properties_are_copied() -> None:
    remote = {
        "id": IMAGE_ID,
        "os_hidden": False,
        "os_hash_algo": "sha512",
        "os_glance_importing_to_stores": "",
        "os_distro": "rhel",
        "os_type": "linux",
        "hw_cpu_cores": "5",
        "speed": "88mph",
    }
    assert copied_properties(remote, ["hw_", "os_distro"]) == {
        "hw_cpu_cores": "5",
        "os_distro": "rhel",
    }
    # A wide prefix still never reaches core attributes or reserved properties.
    assert copied_properties(remote, ["os_"]) == {"os_distro": "rhel", "os_type": "linux"}
