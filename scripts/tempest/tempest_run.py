"""tempest's workspace and configuration for the Glimpse under test, and one run of its tests."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from glimpse_service import Glimpse, Profile
from keystone_service import Keystone
from processes import HarnessError, run_group, run_logged

HERE = Path(__file__).resolve().parent
RUN_TIMEOUT = 3600.0  # seconds; tempest bounds each wait itself (build_timeout), this the whole


@dataclass(frozen=True)
class Outcome:
    id: str  # without tempest's [id-...,tags] suffix
    status: str  # success, fail, skip (subunit's names)
    detail: str  # a skip's reason, a failure's traceback


def tempest_conf(workspace: Path, keystone: Keystone, glimpse: Glimpse, profile: Profile) -> str:
    """tempest.conf for an image-only cloud; tempest finds the image API in Keystone's catalog.
    The feature flags say what Glimpse offers."""
    return f"""\
[DEFAULT]
log_file = {workspace}/logs/tempest.log
debug = True
use_stderr = False

[auth]
use_dynamic_credentials = True
admin_username = admin
admin_password = {keystone.admin_password}
admin_project_name = admin
admin_domain_name = Default
create_isolated_networks = False

[identity]
uri_v3 = {keystone.url}
auth_version = v3
region = RegionOne
v3_endpoint_type = public

[identity-feature-enabled]
api_v2 = False

[service_available]
glance = True
nova = False
cinder = False
neutron = False
swift = False
horizon = False

[image]
region = RegionOne
endpoint_type = public
alternate_image_endpoint = image_remote
alternate_image_endpoint_type = public
http_image = {glimpse.web_base}/cirros-0.6.2-x86_64-uec.tar.gz
http_qcow2_image = {glimpse.web_base}/cirros-0.6.2-x86_64-disk.img
build_timeout = 120
build_interval = 1
hashing_algorithm = sha512
image_caching_enabled = {profile.image_cache}

[image-feature-enabled]
import_image = True
os_glance_reserved = True
manage_locations = {profile.show_multiple_locations}
http_store_enabled = True
do_secure_hash = {profile.do_secure_hash}
image_format_enforcement = True
image_conversion = False
store_weight_enabled = {profile.store_weights}

[enforce_scope]
glance = True
"""


def run(
    bin_dir: Path,
    *,
    workdir: Path,
    keystone: Keystone,
    glimpse: Glimpse,
    profile: Profile,
    regex: str,
    concurrency: int,
) -> list[Outcome]:
    """`tempest run` on a new workspace; every test's result, from its subunit stream."""
    # tempest writes under $HOME whatever it is told: give it a home of its own.
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["HOME"] = str(workdir / "home")
    log = workdir / "logs" / "tempest-setup.log"
    workspace = workdir / "workspace"
    init = [str(bin_dir / "tempest"), "init", "--workspace-path", str(workdir / "workspaces.yaml")]
    run_logged([*init, str(workspace)], log, env=env, cwd=workdir)
    (workspace / "etc" / "tempest.conf").write_text(
        tempest_conf(workspace, keystone, glimpse, profile)
    )
    output = workdir / "logs" / "tempest-run.log"
    command = [str(bin_dir / "tempest"), "run", "--regex", regex, "--concurrency", str(concurrency)]
    # tempest's exit status only says whether something failed; the results below say what.
    try:
        run_group(command, output, env=env, cwd=workspace, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"tempest did not finish within {RUN_TIMEOUT:.0f} s") from None
    stream = workdir / "logs" / "tempest-run.subunit"
    with stream.open("wb") as out:
        subprocess.run(  # noqa: S603 -- stestr from tempest's virtualenv
            [str(bin_dir / "stestr"), "last", "--subunit"],
            cwd=workspace,
            env=env,
            stdout=out,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    with stream.open("rb") as source:
        parsed = subprocess.run(  # noqa: S603 -- our parser in tempest's virtualenv
            [str(bin_dir / "python"), str(HERE / "subunit_results.py")],
            stdin=source,
            capture_output=True,
            check=False,
        )
    if parsed.returncode != 0:
        raise HarnessError(
            f"could not read tempest's results:\n{parsed.stderr.decode(errors='replace')}"
        )
    results = []
    for line in parsed.stdout.decode().splitlines():
        test = json.loads(line)
        results.append(
            Outcome(id=test["id"].split("[", 1)[0], status=test["status"], detail=test["detail"])
        )
    if not results:
        raise HarnessError(f"tempest ran no test; see {output}")
    return results
