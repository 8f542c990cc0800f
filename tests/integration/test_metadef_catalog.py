"""`glimpse-manage db load_metadefs / unload_metadefs / export_metadefs` (the real command, on
SQLite and PostgreSQL), Glance's file format, the --merge / --prefer_new / --overwrite rules of
the Pike and Train upgrades, our own definitions in etc/metadefs, and `make run`'s first start."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from glimpse.db.engine import Database
from glimpse.services import metadef_catalog
from glimpse.services.metadef_catalog import LoadOptions, LoadReport, read_definitions
from support import ROOT, command, environment

OURS = ROOT / "etc" / "metadefs"
NS = "/v2/metadefs/namespaces"
LIBVIRT_IMAGE = "OS::Compute::LibvirtImage"
HYPERVISOR = "OS::Compute::Hypervisor"


def manage(
    database_url: str, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command("glimpse-manage"), "db", *args],
        env=environment(GLIMPSE_DATABASE__CONNECTION=database_url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load(database_url: str, *args: str) -> str:
    """The real command (a process of its own)."""
    done = manage(database_url, "load_metadefs", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def load_here(database: Database, path: Path, **options: bool) -> LoadReport:
    """What the command does, in this process (starting the command costs seconds)."""
    return await metadef_catalog.load(database, read_definitions(path), LoadOptions(**options))


async def show(client: httpx.AsyncClient, name: str, query: str = "") -> dict[str, Any]:
    response = await client.get(f"{NS}/{name}{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def namespace_names(client: httpx.AsyncClient) -> list[str]:
    response = await client.get(f"{NS}?limit=1000&sort_key=namespace&sort_dir=asc")
    return [ns["namespace"] for ns in response.json()["namespaces"]]


def write(directory: Path, name: str, document: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(document, indent=4))
    return path


# -- Glance's file format -----------------------------------------------------------------


def glance_style_files(directory: Path) -> None:
    """Three files written the way Glance's etc/metadefs and db export_metadefs write them."""
    write(
        directory,
        "compute-example.json",
        {
            "namespace": "OS::Example::Compute",
            "display_name": "Example compute options",
            "description": "Written in Glance's layout.",
            # No visibility: the loader makes it private. No owner: "admin".
            "protected": True,
            "resource_type_associations": [
                {"name": "OS::Glance::Image", "prefix": "hw_"},
                {"name": "OS::Cinder::Volume", "prefix": "hw_", "properties_target": "image"},
                {"name": "OS::Nova::Flavor", "prefix": "hw:"},
            ],
            "properties": {
                "features": {
                    "title": "Features",
                    "description": "CPU features.",
                    "operators": ["<or>", "<all-in>"],
                    "type": "array",
                    "items": {"type": "string", "enum": ["aes", "avx"]},
                },
                "ratio": {"title": "Ratio", "description": "A number.", "type": "number"},
                "count": {
                    "title": "Count",
                    "description": "An integer.",
                    "type": "integer",
                    "readonly": False,
                    "default": 8,
                    "minimum": 1,
                },
            },
        },
    )
    write(
        directory,
        "software-example.json",
        {
            "namespace": "OS::Example::Software",
            "display_name": "Example software",
            "description": None,  # exports write absent values as null
            "visibility": "public",
            "protected": False,
            "resource_type_associations": [
                {"name": "OS::Nova::Server", "prefix": None, "properties_target": "metadata"}
            ],
            "properties": {},
            "objects": [
                {
                    "name": "Database",
                    "description": None,
                    "properties": {
                        "db_version": {"title": "Version", "description": "", "type": "string"},
                        "db_port": {"title": "Port", "description": "", "type": "integer"},
                    },
                }
            ],
            "tags": [{"name": "database"}, {"name": "software"}],
        },
    )
    write(
        directory,
        "owned-example.json",
        {
            "namespace": "OS::Example::Owned",
            "display_name": "Owned",
            "description": "Has an owner.",
            "visibility": "private",
            "protected": False,
            "owner": "tenant-a",
            "resource_type_associations": [],
        },
    )
    (directory / "README").write_text("Not a definition file; ignored.\n")


async def test_a_directory_in_glances_format_loads_unchanged(
    database_url: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    glance_style_files(tmp_path / "glance")
    out = load(database_url, "--path", str(tmp_path / "glance"))
    assert "created: OS::Example::Compute, OS::Example::Owned, OS::Example::Software" in out

    compute = await show(client, "OS::Example::Compute")
    assert (compute["visibility"], compute["protected"], compute["owner"]) == (
        "private",
        True,
        "admin",
    )
    assert compute["properties"]["features"]["items"] == {"type": "string", "enum": ["aes", "avx"]}
    assert compute["properties"]["features"]["operators"] == ["<or>", "<all-in>"]
    assert compute["properties"]["count"]["default"] == "8"
    assert [a.get("properties_target") for a in compute["resource_type_associations"]] == [
        None,
        "image",
        None,
    ]
    flavor = await show(client, "OS::Example::Compute", "?resource_type=OS::Nova::Flavor")
    assert sorted(flavor["properties"]) == ["hw:count", "hw:features", "hw:ratio"]

    software = await show(client, "OS::Example::Software")
    assert "description" not in software
    assert software["objects"][0]["properties"]["db_port"] == {
        "title": "Port",
        "description": "",
        "type": "integer",
    }
    assert sorted(tag["name"] for tag in software["tags"]) == ["database", "software"]
    assert (await show(client, "OS::Example::Owned"))["owner"] == "tenant-a"

    # Resource types that come with files are the system's own (protected).
    types = (await client.get("/v2/metadefs/resource_types")).json()["resource_types"]
    assert sorted(t["name"] for t in types) == [
        "OS::Cinder::Volume",
        "OS::Glance::Image",
        "OS::Nova::Flavor",
        "OS::Nova::Server",
    ]
    # One file may be named too.
    single = load(database_url, "--path", str(tmp_path / "glance" / "owned-example.json"))
    assert "skipped (already in the database; see --merge): OS::Example::Owned" in single


async def test_bad_files_load_nothing(
    database_url: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    directory = tmp_path / "defs"
    write(directory, "good.json", {"namespace": "OS::Good"})
    write(
        directory,
        "bad.json",
        {"namespace": "OS::Bad", "properties": {"p": {"title": "P", "type": "integr"}}},
    )
    (directory / "broken.json").write_text("{not json")
    write(directory, "twin.json", {"namespace": "OS::Good"})
    done = manage(database_url, "load_metadefs", "--path", str(directory))
    assert done.returncode == 1
    assert "bad.json" in done.stderr
    assert "integr" in done.stderr
    assert "broken.json" in done.stderr
    assert "twin.json: namespace OS::Good is also defined in" in done.stderr
    assert await namespace_names(client) == []

    assert await namespace_names(client) == []
    for path, message in ((tmp_path / "missing", "No such file"), (tmp_path, "No definition")):
        with pytest.raises(metadef_catalog.DefinitionError, match=message):
            read_definitions(path)


# -- the Pike and Train upgrades: --merge, --prefer_new, --overwrite ----------------------


def older_release(directory: Path) -> None:
    """Our LibvirtImage and Hypervisor namespaces as an older release shipped them: before
    img_hide_hypervisor_id (Pike), hw_pmu, hw_cdrom_bus, hw_firmware_type, the virtio, gop
    and none video models and the powervm hypervisor (Train)."""
    libvirt = json.loads((OURS / "compute-libvirt-image.json").read_text())
    libvirt["display_name"] = "libvirt (older release)"
    for name in ("img_hide_hypervisor_id", "hw_pmu", "hw_cdrom_bus", "hw_firmware_type"):
        del libvirt["properties"][name]
    video = libvirt["properties"]["hw_video_model"]
    video["enum"] = [v for v in video["enum"] if v not in ("virtio", "gop", "none")]
    write(directory, "compute-libvirt-image.json", libvirt)
    hypervisor = json.loads((OURS / "compute-hypervisor.json").read_text())
    hypervisor["properties"]["hypervisor_type"]["enum"].remove("powervm")
    write(directory, "compute-hypervisor.json", hypervisor)


async def state(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    libvirt = await show(client, LIBVIRT_IMAGE)
    hypervisor = await show(client, HYPERVISOR)
    return libvirt, hypervisor["properties"]["hypervisor_type"]


async def test_upgrading_our_definitions_with_merge_and_prefer_new(
    database: Database, database_url: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    older_release(tmp_path / "old")
    await load_here(database, tmp_path / "old")
    # An operator added a property of their own through the API.
    added = await client.post(
        f"{NS}/{LIBVIRT_IMAGE}/properties",
        json={"name": "hw_site_local", "title": "Site", "type": "string"},
    )
    assert added.status_code == 201

    # Without --merge, namespaces already there are left alone; new ones are created.
    report = await load_here(database, OURS)
    assert report.skipped == [HYPERVISOR, LIBVIRT_IMAGE]
    libvirt, hypervisor_type = await state(client)
    assert "hw_pmu" not in libvirt["properties"]
    assert "OS::Compute::Watchdog" in await namespace_names(client)

    # --merge adds what is new and keeps everything the database has, changed or not.
    report = await load_here(database, OURS, merge=True)
    assert LIBVIRT_IMAGE in report.merged
    libvirt, hypervisor_type = await state(client)
    properties = libvirt["properties"]
    for name in ("img_hide_hypervisor_id", "hw_pmu", "hw_cdrom_bus", "hw_firmware_type"):
        assert name in properties, name
    assert properties["hw_pmu"]["type"] == "boolean"
    assert properties["hw_firmware_type"]["enum"] == ["bios", "uefi"]
    assert "virtio" not in properties["hw_video_model"]["enum"]  # the old version is kept
    assert "powervm" not in hypervisor_type["enum"]
    assert libvirt["display_name"] == "libvirt (older release)"
    assert "hw_site_local" in properties

    # --merge --prefer_new (the command itself): the files' versions replace what they
    # name; the rest stays.
    out = load(database_url, "--path", str(OURS), "--merge", "--prefer_new")
    assert "merged: " in out
    libvirt, hypervisor_type = await state(client)
    properties = libvirt["properties"]
    assert {"virtio", "gop", "none"} <= set(properties["hw_video_model"]["enum"])
    assert "powervm" in hypervisor_type["enum"]
    assert libvirt["display_name"] == "libvirt Driver Options for Images"
    assert "hw_site_local" in properties

    # --merge --overwrite: the namespace is exactly the file again.
    report = await load_here(database, OURS, merge=True, overwrite=True)
    assert LIBVIRT_IMAGE in report.overwritten
    libvirt, _ = await state(client)
    assert "hw_site_local" not in libvirt["properties"]
    expected = json.loads((OURS / "compute-libvirt-image.json").read_text())["properties"]
    assert sorted(libvirt["properties"]) == sorted(expected)


# -- export, unload, --if-empty -----------------------------------------------------------


async def test_export_unload_and_load_again(
    database: Database, database_url: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await load_here(database, OURS)
    added = await client.post(
        NS, json={"namespace": "OS::Local", "display_name": "CPU Pinning", "owner": "p1"}
    )
    assert added.status_code == 201
    before = {name: await show(client, name) for name in await namespace_names(client)}

    exported = manage(database_url, "export_metadefs", "--path", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr
    files = sorted(p.name for p in (tmp_path / "export").glob("*.json"))
    assert len(files) == len(before)
    # Glance's file names (the display name without spaces); a clash gets a suffix.
    assert {"CPUPinning.json", "CPUPinning-2.json", "WatchdogBehavior.json"} <= set(files)

    unloaded = manage(database_url, "unload_metadefs")
    assert unloaded.returncode == 0
    assert f"Deleted {len(before)} namespaces" in unloaded.stdout
    assert await namespace_names(client) == []
    assert (await client.get("/v2/metadefs/resource_types")).json() == {"resource_types": []}

    await load_here(database, tmp_path / "export")
    after = {name: await show(client, name) for name in await namespace_names(client)}

    def comparable(body: dict[str, Any]) -> Any:
        text = json.dumps(body, sort_keys=True)
        body = json.loads(re.sub(r'"(created|updated)_at": "[^"]*"', '"t": ""', text))
        # A namespace's associations come in no set order (PostgreSQL varied it after a reload).
        body["resource_type_associations"] = sorted(
            body.get("resource_type_associations", []), key=lambda a: a["name"]
        )
        return body

    assert {k: comparable(v) for k, v in after.items()} == {
        k: comparable(v) for k, v in before.items()
    }
    assert after["OS::Local"]["owner"] == "p1"


async def test_if_empty_loads_only_the_first_time(
    database: Database, database_url: str, client: httpx.AsyncClient
) -> None:
    # The first time is `make run`'s test below; here the catalog is already loaded.
    await load_here(database, OURS)
    deleted = await client.delete(f"{NS}/OS::Compute::AggregateNumInstancesFilter")
    assert deleted.status_code == 204
    second = load(database_url, "--path", str(OURS), "--if-empty")
    assert "nothing done" in second
    assert "OS::Compute::AggregateNumInstancesFilter" not in await namespace_names(client)


def test_make_run_loads_our_definitions_on_first_start(tmp_path: Path) -> None:
    """The glimpse-manage lines of `make run`'s recipe, run as make runs them (from the
    repository, default path), on a new database: the first start loads etc/metadefs, the
    next one leaves the catalog alone."""
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe is not None
    lines = [line.strip() for line in recipe.group(1).splitlines()]
    manage_lines = [line for line in lines if "glimpse-manage" in line]
    assert [line.split("glimpse-manage ", 1)[1] for line in manage_lines] == [
        "db sync",
        "db load_metadefs --if-empty",
    ]
    assert lines.index(manage_lines[-1]) < len(lines) - 1  # before the processes start
    env = environment(GLIMPSE_DATABASE__CONNECTION=f"sqlite:///{tmp_path / 'run.sqlite'}")
    outputs = []
    for _ in range(2):
        for line in manage_lines:
            argv = shlex.split(
                line.replace("$(BIN)/", str(Path(command("glimpse-manage")).parent) + "/")
            )
            done = subprocess.run(
                argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert done.returncode == 0, done.stdout + done.stderr
            outputs.append(done.stdout)
    assert f"Loaded {len(list(OURS.glob('*.json')))} definition files" in outputs[1]
    assert "nothing done" in outputs[3]


# -- what our definitions hold ------------------------------------------------------------


def test_our_definition_files_are_valid() -> None:
    files = read_definitions(OURS)
    assert len(files) == len(list(OURS.glob("*.json")))
    for file in files:
        text = file.path.read_text()
        assert text.endswith("}\n")
        assert file.document.fields.visibility == "public"
        for prop in file.document.properties:
            assert prop.schema.get("description"), (file.path.name, prop.name)


@pytest.fixture
async def ours_loaded(database: Database, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await load_here(database, OURS)
    return client


async def test_our_definitions_cover_the_compute_namespaces(ours_loaded: httpx.AsyncClient) -> None:
    names = set(await namespace_names(ours_loaded))
    assert {
        "OS::Compute::CPUPinning",
        "OS::Compute::VirtCPUTopology",
        "OS::Compute::Watchdog",
        "OS::Compute::RandomNumberGenerator",
        "OS::Compute::Hypervisor",
        "OS::Compute::InstanceData",
        "OS::Compute::GuestShutdownBehavior",
        "OS::Compute::Quota",
        "OS::Software::DBMS",
        "OS::Software::Runtimes",
        "OS::Software::WebServers",
        "OS::Compute::LibvirtImage",
        "OS::Compute::Libvirt",
        "OS::Compute::VMware",
        "OS::Compute::TPM",
        "OS::Compute::SecureBoot",
    } <= names
    quota = await show(ours_loaded, "OS::Compute::Quota")
    assert [o["name"] for o in quota["objects"]] == [
        "CPU Limits",
        "Disk QoS",
        "Virtual Interface QoS",
    ]
    dbms = await show(ours_loaded, "OS::Software::DBMS")
    assert "MySQL" in [o["name"] for o in dbms["objects"]]


async def test_our_definitions_hold_what_pike_and_train_added(
    ours_loaded: httpx.AsyncClient,
) -> None:
    client = ours_loaded
    libvirt = (await show(client, LIBVIRT_IMAGE, "?resource_type=OS::Glance::Image"))["properties"]
    assert libvirt["img_hide_hypervisor_id"]["enum"] == ["yes", "no"]
    assert libvirt["hw_pmu"]["type"] == "boolean"
    assert "virtio" in libvirt["hw_cdrom_bus"]["enum"]
    assert libvirt["hw_firmware_type"]["enum"] == ["bios", "uefi"]
    assert {"virtio", "gop", "none"} <= set(libvirt["hw_video_model"]["enum"])
    hypervisor = (await show(client, HYPERVISOR))["properties"]
    assert "powervm" in hypervisor["hypervisor_type"]["enum"]
    vmware = (await show(client, "OS::Compute::VMware"))["properties"]
    ostypes = set(vmware["vmware_ostype"]["enum"])
    assert {
        "rhel7_64Guest",
        "windows9Server64Guest",
        "vmwarePhoton64Guest",
        "otherGuest",
    } <= ostypes
    assert vmware["vmware_ostype"]["default"] == "otherGuest"
    # Memory encryption: hw_mem_encryption on images, hw:mem_encryption on flavors.
    image = await show(client, "OS::Compute::Libvirt", "?resource_type=OS::Glance::Image")
    flavor = await show(client, "OS::Compute::Libvirt", "?resource_type=OS::Nova::Flavor")
    assert image["properties"]["hw_mem_encryption"]["type"] == "boolean"
    assert flavor["properties"]["hw:mem_encryption"]["type"] == "boolean"
    image_namespaces = await client.get(f"{NS}?resource_types=OS::Glance::Image&limit=1000")
    assert "OS::Compute::Libvirt" in [n["namespace"] for n in image_namespaces.json()["namespaces"]]
    one = await client.get(
        f"{NS}/OS::Compute::Libvirt/properties/hw:mem_encryption?resource_type=OS::Nova::Flavor"
    )
    assert one.status_code == 200
    assert one.json()["name"] == "mem_encryption"
