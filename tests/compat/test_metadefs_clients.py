"""Metadata definitions through the real clients against a real server: the `glance md-*`
commands, python-glanceclient's metadefs managers and openstacksdk's `conn.image.metadef_*`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from glance_shell import glance_all_ok, glance_ok, parse_list, parse_properties
from glanceclient import Client
from glanceclient import exc as glance_exc
from openstack import connection, exceptions

from support import ROOT

pytestmark = [
    pytest.mark.compat,
    # openstacksdk warns about its own internals on every Connection and proxy call.
    pytest.mark.filterwarnings(
        "ignore:Support for InfluxDB:openstack.warnings.RemovedInSDK60Warning"
    ),
    pytest.mark.filterwarnings(
        "ignore:The ignore_missing parameter of all find_:openstack.warnings.RemovedInSDK60Warning"
    ),
    pytest.mark.filterwarnings(
        "ignore:The _compute_attributes method:openstack.warnings.RemovedInSDK50Warning"
    ),
    pytest.mark.filterwarnings(
        "ignore:The 'service_type' parameter is unnecesary:openstack.warnings.RemovedInSDK50Warning"
    ),
]


def unique_namespace() -> str:
    return f"OS::Compat::N{uuid.uuid4().hex[:10]}"


@pytest.fixture
def library(server_url: str) -> Any:
    return Client("2", endpoint=server_url, token="compat-token")


@pytest.fixture
def conn(server_url: str) -> Iterator[connection.Connection]:
    connection_ = connection.Connection(
        auth_type="none", auth={"endpoint": server_url}, image_endpoint_override=server_url
    )
    yield connection_
    connection_.close()


def test_glance_md_commands(server_url: str, library: Any, tmp_path: Path) -> None:
    imported, created = unique_namespace(), unique_namespace()
    # md-namespace-import takes a definition file as etc/metadefs holds them.
    document = json.loads((ROOT / "etc/metadefs/compute-watchdog.json").read_text())
    document.update(namespace=imported, protected=False)
    source = tmp_path / "watchdog.json"
    source.write_text(json.dumps(document))
    shown = parse_properties(glance_ok(server_url, "md-namespace-import", "--file", str(source)))
    assert shown["namespace"] == imported
    assert json.loads(shown["properties"]) == ["watchdog_action"]

    made = parse_properties(
        glance_ok(
            server_url,
            "md-namespace-create",
            created,
            "--display-name",
            "Made by the CLI",
            "--visibility",
            "public",
        )
    )
    assert (made["namespace"], made["visibility"], made["owner"]) == (created, "public", "glimpse")

    prop, obj, tags = glance_all_ok(
        server_url,
        (
            "md-property-create",
            created,
            "--name",
            "cpu_mode",
            "--title",
            "CPU mode",
            "--type",
            "string",
            "--schema",
            '{"enum": ["host-model", "custom"], "default": "custom"}',
        ),
        (
            "md-object-create",
            created,
            "--name",
            "Limits",
            "--schema",
            (
                '{"description": "Caps", "required": ["cap"], '
                '"properties": {"cap": {"title": "Cap", "type": "integer"}}}'
            ),
        ),
        ("md-tag-create-multiple", created, "--names", "alpha,beta"),
    )
    assert parse_properties(prop)["name"] == "cpu_mode"
    assert json.loads(parse_properties(prop)["enum"]) == ["host-model", "custom"]
    assert parse_properties(obj)["name"] == "Limits"
    assert sorted(row["name"] for row in parse_list(tags)) == ["alpha", "beta"]
    associated = parse_properties(
        glance_ok(
            server_url,
            "md-resource-type-associate",
            created,
            "--name",
            "OS::Nova::Flavor",
            "--prefix",
            "compat:",
        )
    )
    assert associated["prefix"] == "compat:"

    listing, show, show_flavor, types, associations, props, prop_show, objects, tag_list = (
        glance_all_ok(
            server_url,
            ("md-namespace-list",),
            ("md-namespace-show", created),
            ("md-namespace-show", created, "--resource-type", "OS::Nova::Flavor"),
            ("md-resource-type-list",),
            ("md-namespace-resource-type-list", imported),
            ("md-property-list", created),
            ("md-property-show", created, "cpu_mode"),
            ("md-object-list", created),
            ("md-tag-list", created),
        )
    )
    assert {imported, created} <= {row["namespace"] for row in parse_list(listing)}
    described = parse_properties(show)
    assert json.loads(described["properties"]) == ["cpu_mode"]
    assert json.loads(described["objects"]) == ["Limits"]
    assert sorted(json.loads(described["tags"])) == ["alpha", "beta"]
    assert json.loads(parse_properties(show_flavor)["properties"]) == ["compat:cpu_mode"]
    assert {"OS::Glance::Image", "OS::Nova::Flavor"} <= {r["name"] for r in parse_list(types)}
    assert {(r["name"], r["prefix"]) for r in parse_list(associations)} >= {
        ("OS::Glance::Image", "hw_"),
        ("OS::Nova::Flavor", "hw:"),
    }
    assert [row["name"] for row in parse_list(props)] == ["cpu_mode"]
    assert parse_properties(prop_show)["default"] == "custom"
    assert [row["name"] for row in parse_list(objects)] == ["Limits"]
    assert sorted(row["name"] for row in parse_list(tag_list)) == ["alpha", "beta"]

    # Updates read, change and send back the whole document.
    updated_prop, updated_ns = glance_all_ok(
        server_url,
        ("md-property-update", created, "cpu_mode", "--title", "CPU model"),
        ("md-namespace-update", imported, "--description", "Changed by the CLI"),
    )
    assert parse_properties(updated_prop)["title"] == "CPU model"
    assert parse_properties(updated_prop)["default"] == "custom"
    assert parse_properties(updated_ns)["description"] == "Changed by the CLI"
    assert parse_properties(updated_ns)["display_name"] == "Watchdog Behavior"

    glance_all_ok(server_url, ("md-namespace-delete", created), ("md-namespace-delete", imported))
    for name in (created, imported):
        with pytest.raises(glance_exc.HTTPNotFound):
            library.metadefs_namespace.get(name)


def test_glanceclient_library(library: Any) -> None:
    name = unique_namespace()
    namespace = library.metadefs_namespace.create(
        namespace=name,
        display_name="Library",
        visibility="public",
        resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "lib_"}],
        properties={"speed": {"title": "Speed", "type": "integer", "minimum": 1, "default": 3}},
        tags=[{"name": "one"}],
    )
    assert namespace.namespace == name
    prefixed = library.metadefs_namespace.get(name, resource_type="OS::Glance::Image")
    assert list(prefixed.properties) == ["lib_speed"]
    assert prefixed.properties["lib_speed"]["default"] == "3"
    assert name in [ns.namespace for ns in library.metadefs_namespace.list(page_size=1)]
    filtered = library.metadefs_namespace.list(filters={"resource_types": ["OS::Glance::Image"]})
    assert name in [ns.namespace for ns in filtered]

    speed = library.metadefs_property.update(name, "speed", title="Top speed")
    assert (speed.name, speed.title, speed.minimum) == ("speed", "Top speed", 1)
    # A generator: the request goes out as it is consumed. It replaces the tags (its
    # append=True cannot be sent: glanceclient fails to encode the boolean header itself;
    # appending is covered through openstacksdk below).
    added = list(library.metadefs_tag.create_multiple(name, tags=["two", "three"]))
    assert [t.name for t in added] == ["two", "three"]
    assert sorted(t.name for t in library.metadefs_tag.list(name)) == ["three", "two"]
    library.metadefs_tag.update(name, "two", name="deux")
    assert library.metadefs_tag.get(name, "deux").name == "deux"
    library.metadefs_object.create(name, name="Obj", properties={})
    assert [o.name for o in library.metadefs_object.list(name)] == ["Obj"]
    with pytest.raises(glance_exc.HTTPConflict):
        library.metadefs_object.create(name, name="Obj", properties={})
    # The client checks bodies against the schemas the server serves...
    with pytest.raises(TypeError, match="'text' is not one of"):
        library.metadefs_property.create(name, name="bad", title="Bad", type="text")
    # ...and the server checks what the client does not (a pattern must be a regex).
    with pytest.raises(glance_exc.HTTPBadRequest):
        library.metadefs_property.create(
            name, name="bad", title="Bad", type="string", pattern="([unclosed"
        )
    library.metadefs_resource_type.deassociate(name, "OS::Glance::Image")
    assert list(library.metadefs_resource_type.get(name)) == []
    library.metadefs_namespace.delete(name)
    with pytest.raises(glance_exc.HTTPNotFound):
        library.metadefs_namespace.get(name)


def test_openstacksdk_metadefs(conn: connection.Connection) -> None:
    name = unique_namespace()
    image = conn.image
    created = image.create_metadef_namespace(
        namespace=name, display_name="SDK", visibility="public", is_protected=False
    )
    assert (created.namespace, created.visibility) == (name, "public")
    assert name in [ns.namespace for ns in image.metadef_namespaces()]
    assert name in [ns.namespace for ns in image.metadef_namespaces(visibility="public")]

    updated = image.update_metadef_namespace(name, description="set by the SDK")
    assert updated.description == "set by the SDK"
    assert image.get_metadef_namespace(name).description == "set by the SDK"

    image.create_metadef_property(
        name, name="video", title="Video", type="string", enum=["virtio", "gop", "none"]
    )
    assert [p.name for p in image.metadef_properties(name)] == ["video"]
    video = image.get_metadef_property("video", name)
    assert video.enum == ["virtio", "gop", "none"]
    image.create_metadef_object(name, name="Obj", description="d", properties={})
    assert [o.name for o in image.metadef_objects(name)] == ["Obj"]
    association = image.create_metadef_resource_type_association(
        name, name="OS::Nova::Flavor", prefix="sdk:"
    )
    assert association.prefix == "sdk:"
    assert [a.name for a in image.metadef_resource_type_associations(name)] == ["OS::Nova::Flavor"]
    assert "OS::Nova::Flavor" in [t.name for t in image.metadef_resource_types()]
    image.add_tag_to_metadef_namespace(name, "first")
    namespace = image.get_metadef_namespace(name)
    namespace.set_tags(image, ["x", "y"], append=True)
    shown = conn.session.get(f"{image.get_endpoint()}metadefs/namespaces/{name}/tags").json()
    assert sorted(tag["name"] for tag in shown["tags"]) == ["first", "x", "y"]
    namespace.set_tags(image, ["z"])
    shown = conn.session.get(f"{image.get_endpoint()}metadefs/namespaces/{name}/tags").json()
    assert shown == {"tags": [{"name": "z"}]}
    assert image.get_metadef_namespace_schema().name == "namespace"
    assert image.get_metadef_resource_type_schema().name == "resource_type_association"

    image.delete_all_metadef_properties(name)
    assert list(image.metadef_properties(name)) == []
    image.delete_metadef_namespace(name)
    with pytest.raises(exceptions.NotFoundException):
        image.get_metadef_namespace(name)
