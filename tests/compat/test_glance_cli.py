"""The `glance` command line client (python-glanceclient's shell) against a real server."""

from __future__ import annotations

import ast
import io
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from glance_shell import (
    glance_all,
    glance_all_ok,
    glance_ok,
    parse_list,
    parse_properties,
    sha512_of,
)
from glanceclient import Client

if TYPE_CHECKING:
    from collections.abc import Iterator

    from compat_helpers import ImageFile

pytestmark = pytest.mark.compat


@pytest.fixture
def library(server_url: str) -> Any:
    """python-glanceclient as a library, for set-up and checks around the commands under test."""
    return Client("2", endpoint=server_url, token="compat-token")


def test_create_qcow2_from_file_and_download(
    server_url: str, library: Any, qcow2_image: ImageFile, unique_name: str, tmp_path: Path
) -> None:
    name = f"cirros-{unique_name}"
    created = parse_properties(
        glance_ok(
            server_url,
            "image-create",
            "--name",
            name,
            "--disk-format",
            "qcow2",
            "--container-format",
            "bare",
            "--file",
            str(qcow2_image.path),
        )
    )
    image_id = created["id"]
    uuid.UUID(image_id)
    assert created["name"] == name
    assert created["status"] == "active"
    assert created["disk_format"] == "qcow2"
    assert created["container_format"] == "bare"
    assert created["size"] == str(qcow2_image.size) == "262144"
    assert created["checksum"] == qcow2_image.md5
    assert created["os_hash_algo"] == "sha512"
    assert created["os_hash_value"] == qcow2_image.sha512
    assert created["owner"] == "glimpse"
    assert json.loads(created["tags"]) == []

    out = tmp_path / "downloaded.qcow2"
    glance_ok(server_url, "image-download", "--file", str(out), image_id)
    assert out.read_bytes() == qcow2_image.read()

    library.images.delete(image_id)


def test_big_raw_upload_and_download(
    server_url: str, library: Any, big_image: ImageFile, unique_name: str, tmp_path: Path
) -> None:
    created = parse_properties(
        glance_ok(
            server_url,
            "image-create",
            "--name",
            unique_name,
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--file",
            str(big_image.path),
        )
    )
    image_id = created["id"]
    assert created["status"] == "active"
    assert created["size"] == str(big_image.size) == str(64 * 1024 * 1024)
    assert created["checksum"] == big_image.md5
    assert created["os_hash_value"] == big_image.sha512

    out = tmp_path / "downloaded.raw"
    glance_ok(server_url, "image-download", "--file", str(out), image_id)
    assert out.stat().st_size == big_image.size
    assert sha512_of(out) == big_image.sha512

    library.images.delete(image_id)


def _create_args(name: str, data: Path, *extra: str) -> tuple[str, ...]:
    return (
        "image-create",
        "--name",
        name,
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        *extra,
        "--file",
        str(data),
    )


@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.raw"
    path.write_bytes(b"\x00" * 4096)
    return path


@pytest.fixture
def two_images(server_url: str, library: Any, small_file: Path, unique_name: str) -> Iterator[Any]:
    """<name>-a and <name>-b made by image-create with properties and tags."""
    tag = f"tag-{uuid.uuid4().hex}"
    marker = uuid.uuid4().hex
    extra = ("--min-ram", "128", "--property", f"compat_marker={marker}", "--tags", tag, "t1")
    outputs = glance_all_ok(
        server_url,
        _create_args(f"{unique_name}-a", small_file, *extra),
        _create_args(f"{unique_name}-b", small_file, *extra),
    )
    a, b = (parse_properties(output)["id"] for output in outputs)
    yield a, b, tag, marker
    for image_id in (a, b):
        library.images.delete(image_id)


def test_show_and_list(server_url: str, two_images: Any, unique_name: str) -> None:
    a, b, tag, marker = two_images
    shown, *lists = glance_all_ok(
        server_url,
        ("image-show", a),
        # image-list sorts by name ascending unless told otherwise.
        ("image-list", "--tag", tag),
        ("--verbose", "image-list", "--tag", tag, "--sort", "name:desc", "--page-size", "1"),
        ("image-list", "--property-filter", f"compat_marker={marker}", "--limit", "1"),
        # Glance's default direction is desc when only a key is given.
        ("image-list", "--tag", tag, "--sort-key", "name"),
    )
    properties = parse_properties(shown)
    assert properties["id"] == a
    assert properties["name"] == f"{unique_name}-a"
    assert properties["status"] == "active"
    assert properties["size"] == "4096"
    assert properties["min_ram"] == "128"
    assert properties["compat_marker"] == marker
    assert sorted(json.loads(properties["tags"])) == sorted([tag, "t1"])

    by_name, verbose, limited, sort_key_only = (parse_list(output) for output in lists)
    assert by_name == [
        {"ID": a, "Name": f"{unique_name}-a"},
        {"ID": b, "Name": f"{unique_name}-b"},
    ]
    assert verbose == [
        {
            "ID": image_id,
            "Name": f"{unique_name}-{suffix}",
            "Disk_format": "raw",
            "Container_format": "bare",
            "Size": "4096",
            "Status": "active",
            "Owner": "glimpse",
        }
        for image_id, suffix in ((b, "b"), (a, "a"))
    ]
    assert [row["ID"] for row in limited] == [a]
    assert [row["ID"] for row in sort_key_only] == [b, a]


def test_update_and_tags(server_url: str, library: Any, unique_name: str) -> None:
    image_id = library.images.create(
        name=unique_name,
        disk_format="raw",
        container_format="bare",
        keep="k",
        change="old",
        drop_me="soon",
        tags=["t1"],
    )["id"]

    updated = parse_properties(
        glance_ok(
            server_url,
            "image-update",
            "--name",
            f"{unique_name}-renamed",
            "--min-disk",
            "3",
            "--property",
            "change=new",
            "--property",
            "added=1",
            "--remove-property",
            "drop_me",
            image_id,
        )
    )
    assert updated["id"] == image_id
    assert updated["name"] == f"{unique_name}-renamed"
    assert updated["min_disk"] == "3"
    assert updated["keep"] == "k"
    assert updated["change"] == "new"
    assert updated["added"] == "1"
    assert "drop_me" not in updated

    (row,) = parse_list(glance_ok(server_url, "image-tag-update", image_id, "t2"))
    assert row["ID"] == image_id
    assert sorted(ast.literal_eval(row["Tags"])) == ["t1", "t2"]
    assert glance_ok(server_url, "image-tag-delete", image_id, "t1") == ""

    image = library.images.get(image_id)
    assert image["tags"] == ["t2"]
    assert image["name"] == f"{unique_name}-renamed"
    assert "drop_me" not in image
    library.images.delete(image_id)


def test_delete(server_url: str, library: Any, unique_name: str) -> None:
    image = library.images.create(name=unique_name, disk_format="raw", container_format="bare")
    library.images.upload(image["id"], io.BytesIO(b"x" * 1024), image_size=1024)
    image_id = image["id"]

    assert glance_ok(server_url, "image-delete", image_id) == ""

    shown, deleted = glance_all(server_url, ("image-show", image_id), ("image-delete", image_id))
    assert shown.returncode == 1
    assert "404" in shown.stderr
    assert image_id in shown.stderr
    assert deleted.returncode == 1
    assert f"No image with an ID of '{image_id}' exists." in deleted.stderr
    assert list(library.images.list(filters={"name": unique_name})) == []
