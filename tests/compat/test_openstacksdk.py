"""openstacksdk's image proxy (`conn.image`) against a real server."""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from compat_helpers import SDK_MARKS
from openstack import connection, exceptions

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from compat_helpers import ImageFile

pytestmark = SDK_MARKS

MiB = 1024 * 1024


@pytest.fixture
def conn(server_url: str) -> Iterator[connection.Connection]:
    """No Keystone: auth_type "none" sends no token and uses the endpoint for every service.

    cloud=None keeps clouds.yaml and OS_* variables out of the configuration.
    """
    connection_ = connection.Connection(
        auth_type="none",
        auth={"endpoint": server_url},
        image_endpoint_override=server_url,
    )
    yield connection_
    connection_.close()


def _ids(images: Any) -> list[str]:
    return [image.id for image in images]


def test_endpoint_discovery(conn: connection.Connection, server_url: str) -> None:
    """keystoneauth discovers /v2/ from the version document at the root."""
    assert conn.image.get_endpoint() == f"{server_url}/v2/"


def test_create_upload_download(
    conn: connection.Connection, big_image: ImageFile, unique_name: str, tmp_path: Path
) -> None:
    # With filename= the SDK opens the file and never closes it (a ResourceWarning), so the
    # test passes an open file; the SDK sends its size as X-OpenStack-Image-Size.
    with big_image.path.open("rb") as data:
        image = conn.image.create_image(
            name=unique_name,
            data=data,
            disk_format="raw",
            container_format="bare",
            tags=["compat", "sdk"],
            md5=big_image.md5,
            compat_client="openstacksdk",
        )
    assert image.name == unique_name
    assert image.disk_format == "raw"
    assert image.container_format == "bare"

    fetched = conn.image.get_image(image.id)
    assert fetched.status == "active"
    assert fetched.size == big_image.size == 64 * MiB
    assert fetched.checksum == big_image.md5
    assert fetched.hash_algo == "sha512"
    assert fetched.hash_value == big_image.sha512
    assert fetched.owner == "glimpse"
    assert sorted(fetched.tags) == ["compat", "sdk"]
    assert fetched.properties["compat_client"] == "openstacksdk"
    # create_image records the caller's digests as owner_specified.openstack.* properties.
    assert fetched.properties["owner_specified.openstack.md5"] == big_image.md5
    assert fetched.properties["owner_specified.openstack.object"] == f"images/{unique_name}"

    response = conn.image.download_image(image, stream=True)
    sha512 = hashlib.sha512()
    received = 0
    for chunk in response.iter_content(chunk_size=MiB):
        sha512.update(chunk)
        received += len(chunk)
    assert received == big_image.size
    assert sha512.hexdigest() == big_image.sha512
    assert response.headers["Content-Length"] == str(big_image.size)

    # With `output` the SDK verifies os_hash_value itself and raises on a mismatch.
    out = tmp_path / "downloaded.raw"
    conn.image.download_image(image, output=str(out))
    assert out.stat().st_size == big_image.size

    conn.image.delete_image(image, ignore_missing=False)


def test_upload_bytes_and_download_in_memory(conn: connection.Connection, unique_name: str) -> None:
    payload = bytes(range(256)) * 1024
    image = conn.image.create_image(
        name=unique_name,
        data=payload,
        disk_format="raw",
        container_format="bare",
        validate_checksum=True,
    )
    fetched = conn.image.get_image(image.id)
    assert fetched.status == "active"
    assert fetched.size == len(payload)
    assert fetched.checksum == hashlib.md5(payload, usedforsecurity=False).hexdigest()
    # stream=False reads everything and checks it against os_hash_value.
    assert conn.image.download_image(image).content == payload
    conn.image.delete_image(image, ignore_missing=False)


@pytest.fixture
def listed_images(conn: connection.Connection, unique_name: str) -> Iterator[Any]:
    """Three active images with a shared unique tag: -a 1 KiB, -b 2 KiB, -c 3 KiB."""
    tag = f"tag-{uuid.uuid4().hex}"
    ids = {}
    for suffix, size in (("a", 1024), ("b", 2048), ("c", 3072)):
        image = conn.image.create_image(
            name=f"{unique_name}-{suffix}",
            data=b"s" * size,
            disk_format="raw",
            container_format="bare",
            tags=[tag],
            allow_duplicates=True,
        )
        ids[suffix] = image.id
    yield tag, ids
    for image_id in ids.values():
        conn.image.delete_image(image_id)


def test_list_filters_sorting_and_paging(
    conn: connection.Connection, listed_images: Any, unique_name: str
) -> None:
    tag, ids = listed_images
    a, b, c = ids["a"], ids["b"], ids["c"]

    assert _ids(conn.image.images(name=f"{unique_name}-b")) == [b]
    assert _ids(conn.image.images(tag=tag, sort="name:asc")) == [a, b, c]
    assert _ids(conn.image.images(tag=tag, sort_key="size", sort_dir="desc")) == [c, b, a]
    assert _ids(conn.image.images(tag=tag, size_min=2048, sort="size:asc")) == [b, c]
    assert _ids(conn.image.images(tag=tag, size_max=2048, sort="size:asc")) == [a, b]
    assert _ids(conn.image.images(tag=tag, status="active", sort="name:asc")) == [a, b, c]
    assert _ids(conn.image.images(tag=tag, status="queued")) == []
    assert _ids(conn.image.images(tag=tag, owner="glimpse", sort="name:desc")) == [c, b, a]
    # The SDK pages with `limit` and follows the server's `next` links to the end.
    assert _ids(conn.image.images(tag=tag, sort="name:asc", limit=1)) == [a, b, c]
    assert _ids(conn.image.images(tag=tag, sort="name:asc", marker=a)) == [b, c]

    found = conn.image.find_image(f"{unique_name}-c", ignore_missing=False)
    assert found.id == c
    assert conn.image.find_image(c).name == f"{unique_name}-c"


def test_update(conn: connection.Connection, unique_name: str) -> None:
    image = conn.image.create_image(
        name=unique_name,
        disk_format="raw",
        container_format="bare",
        keep="k",
        change="old",
        drop_me="d",
    )
    assert image.status == "queued"

    updated = conn.image.update_image(
        image, name=f"{unique_name}-renamed", min_ram=512, visibility="private"
    )
    assert updated.name == f"{unique_name}-renamed"
    assert updated.min_ram == 512
    assert updated.visibility == "private"
    assert updated.properties["keep"] == "k"

    assert conn.image.update_image_properties(updated, change="new", added="1") is True
    fetched = conn.image.get_image(image.id)
    assert fetched.properties["change"] == "new"
    assert fetched.properties["added"] == "1"
    assert fetched.properties["keep"] == "k"

    # Removing a property: send the properties without it.
    remaining = {k: v for k, v in fetched.properties.items() if k != "drop_me"}
    updated = conn.image.update_image(fetched, **remaining)
    assert "drop_me" not in updated.properties
    assert "drop_me" not in conn.image.get_image(image.id).properties
    assert conn.image.get_image(image.id).name == f"{unique_name}-renamed"

    conn.image.delete_image(image, ignore_missing=False)


def test_tags(conn: connection.Connection, unique_name: str) -> None:
    image = conn.image.create_image(
        name=unique_name, disk_format="raw", container_format="bare", tags=["initial"]
    )
    conn.image.add_tag(image, "alpha")
    conn.image.add_tag(image, "beta")
    assert sorted(conn.image.get_image(image.id).tags) == ["alpha", "beta", "initial"]

    conn.image.remove_tag(image, "initial")
    assert sorted(conn.image.get_image(image.id).tags) == ["alpha", "beta"]
    assert _ids(conn.image.images(tag="alpha", name=unique_name)) == [image.id]

    with pytest.raises(exceptions.NotFoundException):
        conn.image.remove_tag(image, "never-added")
    conn.image.delete_image(image, ignore_missing=False)


def test_delete(conn: connection.Connection, unique_name: str) -> None:
    image = conn.image.create_image(
        name=unique_name, data=b"gone" * 256, disk_format="raw", container_format="bare"
    )
    conn.image.delete_image(image, ignore_missing=False)

    with pytest.raises(exceptions.NotFoundException) as missing:
        conn.image.get_image(image.id)
    assert missing.value.status_code == 404
    with pytest.raises(exceptions.NotFoundException):
        conn.image.delete_image(image.id, ignore_missing=False)
    conn.image.delete_image(image.id)  # ignore_missing=True: no error
    assert conn.image.find_image(unique_name) is None
    assert _ids(conn.image.images(name=unique_name)) == []
