"""python-glanceclient (as a library) against a real server."""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from compat_helpers import qcow2_bytes
from glanceclient import Client
from glanceclient import exc as glance_exc

if TYPE_CHECKING:
    from compat_helpers import ImageFile

pytestmark = pytest.mark.compat


@pytest.fixture
def glance(server_url: str) -> Any:
    return Client("2", endpoint=server_url, token="compat-token")


def _create(glance: Any, name: str, **fields: Any) -> Any:
    fields.setdefault("disk_format", "raw")
    fields.setdefault("container_format", "bare")
    return glance.images.create(name=name, **fields)


def _ids(images: Any) -> list[str]:
    return [image["id"] for image in images]


def test_create_upload_download_roundtrip(
    glance: Any, big_image: ImageFile, unique_name: str
) -> None:
    image = _create(
        glance,
        unique_name,
        visibility="private",
        min_ram=256,
        compat_client="glanceclient",
        tags=["compat", "big"],
    )
    assert image["name"] == unique_name
    assert image["status"] == "queued"
    assert image["disk_format"] == "raw"
    assert image["container_format"] == "bare"
    assert image["visibility"] == "private"
    assert image["min_ram"] == 256
    assert image["min_disk"] == 0
    assert image["compat_client"] == "glanceclient"
    assert sorted(image["tags"]) == ["big", "compat"]
    assert image["owner"] == "glimpse"
    assert image.get("size") is None
    assert image.get("checksum") is None
    uuid.UUID(image["id"])

    with big_image.path.open("rb") as data:
        glance.images.upload(image["id"], data, image_size=big_image.size)

    shown = glance.images.get(image["id"])
    assert shown["status"] == "active"
    assert shown["size"] == big_image.size == 64 * 1024 * 1024
    assert shown["checksum"] == big_image.md5
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == big_image.sha512
    assert shown["compat_client"] == "glanceclient"

    # data() verifies os_hash_value itself while iterating (do_checksum=True).
    body = glance.images.data(image["id"])
    assert len(body) == big_image.size
    sha512 = hashlib.sha512()
    received = 0
    for chunk in body:
        sha512.update(chunk)
        received += len(chunk)
    assert received == big_image.size
    assert sha512.hexdigest() == big_image.sha512

    glance.images.delete(image["id"])


def test_upload_without_size_is_chunked(glance: Any, unique_name: str) -> None:
    """Without image_size and with a non-file stream the client sends a chunked body."""
    payload = bytes(range(256)) * 4096  # 1 MiB
    image = _create(glance, unique_name)
    glance.images.upload(image["id"], io.BytesIO(payload))
    shown = glance.images.get(image["id"])
    assert shown["status"] == "active"
    assert shown["size"] == len(payload)
    assert shown["checksum"] == hashlib.md5(payload, usedforsecurity=False).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(payload).hexdigest()
    assert b"".join(glance.images.data(image["id"])) == payload
    glance.images.delete(image["id"])


@pytest.fixture
def listed_images(glance: Any, unique_name: str) -> Any:
    """Three images sharing a unique tag: <name>-a raw 1 KiB, -b qcow2 2 KiB, -c raw 3 KiB."""
    tag = f"tag-{uuid.uuid4().hex}"
    images = {}
    # The qcow2 must be one (uploads are inspected): 512-byte clusters make it 2 KiB.
    payloads = {"a": ("raw", b"x" * 1024), "b": ("qcow2", qcow2_bytes(cluster_bits=9))}
    payloads["c"] = ("raw", b"x" * 3072)
    for suffix, (disk_format, data) in payloads.items():
        image = _create(glance, f"{unique_name}-{suffix}", disk_format=disk_format, tags=[tag])
        glance.images.upload(image["id"], io.BytesIO(data), image_size=len(data))
        images[suffix] = image["id"]
    yield tag, images
    for image_id in images.values():
        glance.images.delete(image_id)


def test_list_filters(glance: Any, listed_images: Any, unique_name: str) -> None:
    tag, ids = listed_images
    a, b, c = ids["a"], ids["b"], ids["c"]

    assert _ids(glance.images.list(filters={"name": f"{unique_name}-b"})) == [b]
    by_tag = list(glance.images.list(filters={"tag": [tag]}, sort="name:asc"))
    assert _ids(by_tag) == [a, b, c]
    assert [image["name"] for image in by_tag] == [f"{unique_name}-{s}" for s in "abc"]
    assert all(image["status"] == "active" for image in by_tag)
    assert [image["size"] for image in by_tag] == [1024, 2048, 3072]

    assert _ids(glance.images.list(filters={"tag": [tag], "disk_format": "qcow2"})) == [b]
    assert _ids(
        glance.images.list(filters={"tag": [tag], "disk_format": "raw"}, sort="name:asc")
    ) == [
        a,
        c,
    ]
    assert _ids(glance.images.list(filters={"tag": [tag], "size_min": 2048}, sort="name:asc")) == [
        b,
        c,
    ]
    assert _ids(glance.images.list(filters={"tag": [tag], "size_max": 2048}, sort="name:asc")) == [
        a,
        b,
    ]
    assert _ids(
        glance.images.list(filters={"tag": [tag], "status": "active"}, sort="name:asc")
    ) == [
        a,
        b,
        c,
    ]
    assert _ids(glance.images.list(filters={"tag": [tag], "disk_format": "vmdk"})) == []
    assert _ids(glance.images.list(filters={"tag": [tag, "no-such-tag"]})) == []


def test_list_sorting_and_paging(glance: Any, listed_images: Any) -> None:
    tag, ids = listed_images
    a, b, c = ids["a"], ids["b"], ids["c"]

    assert _ids(glance.images.list(filters={"tag": [tag]}, sort="size:desc")) == [c, b, a]
    assert _ids(glance.images.list(filters={"tag": [tag]}, sort_key="size", sort_dir="desc")) == [
        c,
        b,
        a,
    ]
    assert _ids(
        glance.images.list(filters={"tag": [tag]}, sort_key=["disk_format", "name"], sort_dir="asc")
    ) == [b, a, c]
    assert _ids(glance.images.list(filters={"tag": [tag]}, sort="disk_format:desc,name:desc")) == [
        c,
        a,
        b,
    ]

    # page_size=1 makes the client follow the server's `next` links twice.
    assert _ids(glance.images.list(filters={"tag": [tag]}, sort="name:asc", page_size=1)) == [
        a,
        b,
        c,
    ]
    assert _ids(
        glance.images.list(filters={"tag": [tag]}, sort="name:asc", page_size=2, limit=2)
    ) == [a, b]
    assert _ids(glance.images.list(filters={"tag": [tag]}, sort="name:asc", marker=a)) == [b, c]
    assert _ids(
        glance.images.list(filters={"tag": [tag]}, sort="name:asc", marker=a, page_size=1)
    ) == [b, c]
    assert _ids(glance.images.list(filters={"tag": [tag]}, sort="name:desc", marker=b)) == [a]


def test_update_properties(glance: Any, unique_name: str) -> None:
    image = _create(glance, unique_name, keep="k", change="old", drop="d")
    updated = glance.images.update(
        image["id"],
        name=f"{unique_name}-renamed",
        change="new",
        added="1",
        min_disk=5,
        remove_props=["drop"],
    )
    assert updated["id"] == image["id"]
    assert updated["name"] == f"{unique_name}-renamed"
    assert updated["keep"] == "k"
    assert updated["change"] == "new"
    assert updated["added"] == "1"
    assert updated["min_disk"] == 5
    assert "drop" not in updated

    shown = glance.images.get(image["id"])
    assert shown["name"] == f"{unique_name}-renamed"
    assert shown["change"] == "new"
    assert "drop" not in shown
    assert _ids(glance.images.list(filters={"name": f"{unique_name}-renamed"})) == [image["id"]]
    assert _ids(glance.images.list(filters={"name": unique_name})) == []

    # Changing a base attribute and removing several properties at once.
    updated = glance.images.update(
        image["id"], visibility="private", remove_props=["keep", "added"]
    )
    assert updated["visibility"] == "private"
    assert "keep" not in updated
    assert "added" not in updated
    assert updated["change"] == "new"
    glance.images.delete(image["id"])


def test_tags(glance: Any, unique_name: str) -> None:
    image = _create(glance, unique_name, tags=["initial"])
    glance.image_tags.update(image["id"], "alpha")
    glance.image_tags.update(image["id"], "beta")
    glance.image_tags.update(image["id"], "alpha")  # adding a present tag changes nothing
    assert sorted(glance.images.get(image["id"])["tags"]) == ["alpha", "beta", "initial"]

    tag = f"only-{uuid.uuid4().hex}"
    glance.image_tags.update(image["id"], tag)
    assert _ids(glance.images.list(filters={"tag": [tag]})) == [image["id"]]

    glance.image_tags.delete(image["id"], "alpha")
    glance.image_tags.delete(image["id"], tag)
    assert sorted(glance.images.get(image["id"])["tags"]) == ["beta", "initial"]
    assert _ids(glance.images.list(filters={"tag": [tag]})) == []

    with pytest.raises(glance_exc.HTTPNotFound):
        glance.image_tags.delete(image["id"], "never-added")
    glance.images.delete(image["id"])


def test_delete(glance: Any, unique_name: str) -> None:
    image = _create(glance, unique_name)
    glance.images.upload(image["id"], io.BytesIO(b"data" * 1024), image_size=4096)
    assert glance.images.get(image["id"])["status"] == "active"

    glance.images.delete(image["id"])

    with pytest.raises(glance_exc.HTTPNotFound) as missing:
        glance.images.get(image["id"])
    assert image["id"] in str(missing.value)
    with pytest.raises(glance_exc.HTTPNotFound):
        glance.images.data(image["id"], do_checksum=False)
    with pytest.raises(glance_exc.HTTPNotFound):
        glance.images.delete(image["id"])
    with pytest.raises(glance_exc.HTTPNotFound):
        glance.image_tags.update(image["id"], "late")
    assert _ids(glance.images.list(filters={"name": unique_name})) == []


def test_unknown_image(glance: Any) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(glance_exc.HTTPNotFound) as excinfo:
        glance.images.get(missing)
    assert missing in str(excinfo.value)
    with pytest.raises(glance_exc.HTTPNotFound):
        glance.images.upload(missing, io.BytesIO(b"x"), image_size=1)


def test_data_of_queued_image_is_empty(glance: Any, unique_name: str) -> None:
    """Glance answers 204 for an image without data; the client then returns None."""
    image = _create(glance, unique_name)
    body = glance.images.data(image["id"])
    assert body.wrapped is None
    assert body.request_ids[0].startswith("req-")
    glance.images.delete(image["id"])


def test_members_and_deactivation(glance: Any, unique_name: str) -> None:
    image = _create(glance, unique_name)
    assert image["visibility"] == "shared"
    member = glance.image_members.create(image["id"], "partner-project")
    assert member["member_id"] == "partner-project"
    assert member["status"] == "pending"
    listed = list(glance.image_members.list(image["id"]))
    assert [m["member_id"] for m in listed] == ["partner-project"]
    # noauth acts as an admin, who may answer for the member project.
    updated = glance.image_members.update(image["id"], "partner-project", "accepted")
    assert updated["status"] == "accepted"
    glance.image_members.delete(image["id"], "partner-project")
    assert list(glance.image_members.list(image["id"])) == []
    glance.image_members.create(image["id"], "p2")
    with pytest.raises(glance_exc.HTTPConflict):
        glance.image_members.create(image["id"], "p2")
    glance.images.upload(image["id"], io.BytesIO(b"deactivate me"))
    glance.images.deactivate(image["id"])
    assert glance.images.get(image["id"])["status"] == "deactivated"
    glance.images.reactivate(image["id"])
    assert glance.images.get(image["id"])["status"] == "active"
    glance.images.delete(image["id"])
