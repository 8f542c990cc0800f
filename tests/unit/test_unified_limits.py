"""Keystone unified limits: the [oslo_limit] section as Glance's documentation writes it, and
the refusal in oslo.limit's words wrapped in Glance's (the real Keystone is in
tests/keystone/test_keystone_unified_limits.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from glimpse.config import ConfigError, load_settings
from glimpse.domain.errors import LimitExceeded
from glimpse.unified_limits import UNLIMITED, enforce

GLANCE_DOCS = """\
[DEFAULT]
use_keystone_limits = True

[oslo_limit]
auth_url = http://keystone:5000/v3
auth_type = password
user_domain_id = default
username = glance
system_scope = all
password = secret
endpoint_id = ENDPOINT_ID
"""


def test_glances_oslo_limit_section_loads(tmp_path: Path) -> None:
    path = tmp_path / "glance-api.conf"
    path.write_text(GLANCE_DOCS)
    settings = load_settings(path)
    assert settings.use_keystone_limits
    oslo = settings.oslo_limit
    assert (oslo.endpoint_id, oslo.system_scope, oslo.user_domain_id) == (
        "ENDPOINT_ID",
        "all",
        "default",
    )
    assert oslo.password is not None
    assert oslo.password.get_secret_value() == "secret"
    assert oslo.cache_time == 60


def test_use_keystone_limits_needs_credentials_and_an_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "glance-api.conf"
    path.write_text("[DEFAULT]\nuse_keystone_limits = true\n[oslo_limit]\nusername = g\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert (
        "use_keystone_limits needs [oslo_limit] auth_url, password, "
        "endpoint_id (or endpoint_service_name)"
    ) in str(caught.value)


def test_within_the_limit_passes_and_unlimited_is_never_over() -> None:
    limits = {"image_count_total": 2, "image_size_total": UNLIMITED}
    usage = {"image_count_total": 1, "image_size_total": 10**6}
    enforce("p", limits, usage, {"image_count_total": 1, "image_size_total": 10**6})


def test_every_resource_over_its_limit_is_named_in_glances_words() -> None:
    limits = {"image_count_total": 2, "image_size_total": 5, "image_stage_total": 9}
    usage = {"image_count_total": 2, "image_size_total": 4, "image_stage_total": 0}
    deltas = {"image_size_total": 2, "image_count_total": 1, "image_stage_total": 9}
    with pytest.raises(LimitExceeded) as refused:
        enforce("p1", limits, usage, deltas)
    assert refused.value.message == (
        "The request returned a 413 Request Entity Too Large. This generally means that rate "
        "limiting or a quota threshold was breached.\n\nThe response body:\n"
        "Project p1 is over a limit for [Resource image_count_total is over limit of 2 due to "
        "current usage 2 and delta 1, Resource image_size_total is over limit of 5 due to "
        "current usage 4 and delta 2]"
    )


def test_a_delta_of_zero_refuses_only_a_project_already_over() -> None:
    enforce("p", {"image_size_total": 3}, {"image_size_total": 3}, {"image_size_total": 0})
    with pytest.raises(LimitExceeded):
        enforce("p", {"image_size_total": 3}, {"image_size_total": 4}, {"image_size_total": 0})
