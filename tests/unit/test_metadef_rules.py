"""Metadata definitions: parsing of bodies and files, the schemas, prefixes and the policy."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from glimpse.config import load_settings
from glimpse.context import RequestContext
from glimpse.domain import metadef_policy
from glimpse.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, ReadOnlyAttribute
from glimpse.domain.metadef_schemas import SERVED, namespace_schema, property_schema
from glimpse.domain.metadefs import (
    Association,
    parse_association,
    parse_namespace,
    parse_namespace_fields,
    parse_object,
    parse_property,
    parse_tag,
    parse_tags,
    prefixed,
    unprefixed,
)
from glimpse.domain.policy import PolicyEngine
from glimpse.services.metadef_catalog import DefinitionError, LoadOptions

ENGINE = PolicyEngine()


def ctx(project: str | None, *roles: str) -> RequestContext:
    return ENGINE.bind(RequestContext(project_id=project, user_id="u", roles=frozenset(roles)))


def prop(**extra: Any) -> dict[str, Any]:
    return {"name": "p", "title": "P", "type": "string", **extra}


def test_served_schemas_are_glances_ten_and_valid_draft4() -> None:
    assert sorted(SERVED) == sorted(
        [
            "namespace",
            "namespaces",
            "object",
            "objects",
            "property",
            "properties",
            "resource_type",
            "resource_types",
            "tag",
            "tags",
        ]
    )
    names = {}
    for key, factory in SERVED.items():
        schema = factory()
        jsonschema.Draft4Validator.check_schema(schema)
        names[key] = schema["name"]
    # Glance names the association schemas after what they describe.
    assert names["resource_type"] == "resource_type_association"
    assert names["resource_types"] == "resource_type_associations"
    assert namespace_schema()["required"] == ["namespace"]
    assert property_schema()["required"] == ["name", "title", "type"]


@pytest.mark.parametrize(
    "body",
    [
        prop(type="strin"),  # not a JSON-schema type
        prop(minimum="low"),
        prop(maxLength=-1),
        prop(enum="a,b"),
        prop(pattern="(unclosed"),
        prop(readonly="yes"),
        prop(items={"type": "text"}),
        prop(confidential=True),  # a key the property schema does not have
        {"name": "p", "type": "string"},  # no title
        {"title": "P", "type": "string"},  # no name
        prop(name=""),
        prop(name="a/b"),
        prop(name="x" * 81),
        ["not", "an", "object"],
    ],
)
def test_property_that_does_not_validate_is_refused(body: Any) -> None:
    with pytest.raises(InvalidInput):
        parse_property(body)


def test_property_keeps_its_schema_without_the_name() -> None:
    definition = parse_property(
        prop(enum=["a", "b"], default="a", pattern="^[ab]$", operators=["<or>"])
    )
    assert definition.name == "p"
    assert definition.schema == {
        "title": "P",
        "type": "string",
        "enum": ["a", "b"],
        "default": "a",
        "pattern": "^[ab]$",
        "operators": ["<or>"],
    }


@pytest.mark.parametrize("key", ["created_at", "updated_at"])
def test_property_timestamps_are_read_only(key: str) -> None:
    with pytest.raises(ReadOnlyAttribute):
        parse_property(prop(**{key: "2020-01-01T00:00:00Z"}))


def test_namespace_document_with_everything() -> None:
    document = parse_namespace(
        {
            "namespace": "OS::Test",
            "display_name": "Test",
            "visibility": "public",
            "protected": True,
            "resource_type_associations": [
                {"name": "OS::Glance::Image", "prefix": "hw_"},
                {"name": "OS::Cinder::Volume", "prefix": "hw_", "properties_target": "image"},
            ],
            "properties": {"cpu": {"title": "CPU", "type": "integer", "minimum": 1}},
            "objects": [
                {
                    "name": "Limits",
                    "required": ["cap"],
                    "properties": {"cap": {"title": "Cap", "type": "integer"}},
                    # What a show renders on an object is accepted and ignored.
                    "self": "/v2/...",
                    "created_at": "2020-01-01T00:00:00Z",
                }
            ],
            "tags": [{"name": "a"}, {"name": "b"}],
        }
    )
    assert document.fields.namespace == "OS::Test"
    assert document.fields.visibility == "public"
    assert document.fields.protected is True
    assert document.fields.owner is None
    assert document.associations[1] == Association("OS::Cinder::Volume", "hw_", "image")
    assert document.properties[0].schema == {"title": "CPU", "type": "integer", "minimum": 1}
    assert document.objects[0].required == ("cap",)
    assert document.objects[0].properties_json() == {"cap": {"title": "Cap", "type": "integer"}}
    assert document.tags == ("a", "b")


def test_namespace_defaults() -> None:
    fields = parse_namespace_fields({"namespace": "N"})
    assert (fields.visibility, fields.protected, fields.display_name) == ("private", False, None)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"namespace": "N", "self": "/x"}, ReadOnlyAttribute),
        ({"namespace": "N", "created_at": "x"}, ReadOnlyAttribute),
        ({"display_name": "no name"}, InvalidInput),
        ({"namespace": "N", "visibility": "shared"}, InvalidInput),
        ({"namespace": "N", "description": "d" * 501}, InvalidInput),
        ({"namespace": "N", "unknown": 1}, InvalidInput),
        ({"namespace": "N", "properties": {"p": {"title": "P", "type": "strin"}}}, InvalidInput),
        ({"namespace": "N", "properties": {"p": {"title": "P"}}}, InvalidInput),
        ({"namespace": "N", "objects": [{"description": "no name"}]}, InvalidInput),
        ({"namespace": "N", "objects": [{"name": "o", "extra": 1}]}, InvalidInput),
        ({"namespace": "N", "tags": [{"name": "t", "colour": "red"}]}, InvalidInput),
        ({"namespace": "N", "resource_type_associations": [{"prefix": "x"}]}, InvalidInput),
        ({"namespace": "N", "objects": [{"name": "o"}, {"name": "o"}]}, Conflict),
        ({"namespace": "N", "tags": [{"name": "t"}, {"name": "t"}]}, Conflict),
    ],
)
def test_bad_namespace_documents(body: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_namespace(body)


def test_a_saved_show_loads_as_a_file() -> None:
    shown = {"namespace": "N", "self": "/v2/metadefs/namespaces/N", "schema": "/x"}
    assert parse_namespace(shown, ignore_read_only=True).fields.namespace == "N"


def test_objects_tags_and_associations() -> None:
    obj = parse_object({"name": "o", "description": "d", "properties": {}})
    assert (obj.name, obj.description, obj.required, obj.properties) == ("o", "d", (), ())
    with pytest.raises(ReadOnlyAttribute):
        parse_object({"name": "o", "schema": "/x"})
    with pytest.raises(InvalidInput):
        parse_object({"name": "o", "properties": {"p": {"title": "P", "type": "number", "x": 1}}})
    assert parse_tag({"name": "new"}) == "new"
    with pytest.raises(InvalidInput):
        parse_tag({"name": "n" * 81})
    assert parse_tags({"tags": [{"name": "a"}, {"name": "b"}]}, "N") == ("a", "b")
    with pytest.raises(Conflict):
        parse_tags({"tags": [{"name": "a"}, {"name": "a"}]}, "N")
    with pytest.raises(InvalidInput):
        parse_tags({"tags": [{"name": "a", "x": 1}]}, "N")
    assert parse_association({"name": "OS::Nova::Flavor", "prefix": "hw:"}) == Association(
        "OS::Nova::Flavor", "hw:", None
    )
    with pytest.raises(InvalidInput):
        parse_association({"name": "R", "prefix": "p" * 81})


def test_prefixes() -> None:
    assert prefixed({"cpu_policy": 1}, "hw:") == {"hw:cpu_policy": 1}
    assert prefixed({"cpu_policy": 1}, None) == {"cpu_policy": 1}
    assert unprefixed("hw_cpu_policy", "hw_") == "cpu_policy"
    assert unprefixed("cpu_policy", "hw_") is None
    assert unprefixed("cpu_policy", None) is None


def test_load_options_as_glance_manage_has_them() -> None:
    LoadOptions(merge=True, prefer_new=True)
    LoadOptions(merge=True, overwrite=True)
    for bad in (
        {"prefer_new": True},
        {"overwrite": True},
        {"merge": True, "prefer_new": True, "overwrite": True},
    ):
        with pytest.raises(DefinitionError):
            LoadOptions(**bad)


def test_metadata_source_path_comes_from_glance_api_conf(tmp_path: Any) -> None:
    assert str(load_settings(None).metadata_source_path) == "etc/metadefs"
    config = tmp_path / "glance-api.conf"
    config.write_text("[DEFAULT]\nmetadata_source_path = /etc/glance/metadefs/\n")
    assert str(load_settings(config).metadata_source_path) == "/etc/glance/metadefs"


# -- policy -------------------------------------------------------------------------------


class Ns:
    def __init__(self, owner: str, visibility: str) -> None:
        self.namespace = "N"
        self.owner = owner
        self.visibility = visibility


PRIVATE = Ns("p", "private")
PUBLIC = Ns("p", "public")
OWNER_MEMBER = ctx("p", "member", "reader")
OWNER_READER = ctx("p", "reader")
OTHER = ctx("q", "member", "reader")
ADMIN = ctx("ops", "admin", "member", "reader")
NO_ROLE = ctx("p")


def test_reads_by_readers_of_the_owner_and_of_public_namespaces() -> None:
    for reader in (OWNER_MEMBER, OWNER_READER, ADMIN):
        metadef_policy.enforce(reader, "get_metadef_namespace", PRIVATE)
        metadef_policy.enforce(reader, "get_metadef_properties", PRIVATE)
    metadef_policy.enforce(OTHER, "get_metadef_objects", PUBLIC)
    with pytest.raises(NotFound):
        metadef_policy.enforce(OTHER, "get_metadef_objects", PRIVATE)
    with pytest.raises(NotFound):
        metadef_policy.enforce(NO_ROLE, "get_metadef_namespace", PRIVATE)


def test_changes_are_for_admins_only_by_default() -> None:
    for action in ("modify_metadef_namespace", "add_metadef_property", "delete_metadef_tags"):
        metadef_policy.enforce(ADMIN, action, PRIVATE)
        with pytest.raises(Forbidden):
            metadef_policy.enforce(OWNER_MEMBER, action, PRIVATE)  # can read it: 403
        with pytest.raises(Forbidden):
            metadef_policy.enforce(OTHER, action, PUBLIC)
        with pytest.raises(NotFound):
            metadef_policy.enforce(OTHER, action, PRIVATE)  # cannot read it: 404
    with pytest.raises(Forbidden):
        metadef_policy.enforce(OWNER_MEMBER, "add_metadef_namespace")
    metadef_policy.enforce(ADMIN, "add_metadef_namespace")


def test_namespaces_exist_for_admins_owners_and_everyone_when_public() -> None:
    assert metadef_policy.visible(ADMIN, PRIVATE)
    assert metadef_policy.visible(OWNER_READER, PRIVATE)
    assert not metadef_policy.visible(OTHER, PRIVATE)
    assert metadef_policy.visible(OTHER, PUBLIC)
    assert not metadef_policy.visible(ctx(None, "reader"), PRIVATE)


def test_every_glance_metadef_rule_is_registered() -> None:
    rules = set(ENGINE.enforcer.registered_rules)
    for name in (
        "metadef_default",
        "metadef_admin",
        "get_metadef_namespace",
        "get_metadef_namespaces",
        "modify_metadef_namespace",
        "add_metadef_namespace",
        "delete_metadef_namespace",
        "get_metadef_object",
        "get_metadef_objects",
        "modify_metadef_object",
        "add_metadef_object",
        "delete_metadef_object",
        "list_metadef_resource_types",
        "get_metadef_resource_type",
        "add_metadef_resource_type_association",
        "remove_metadef_resource_type_association",
        "get_metadef_property",
        "get_metadef_properties",
        "modify_metadef_property",
        "add_metadef_property",
        "remove_metadef_property",
        "get_metadef_tag",
        "get_metadef_tags",
        "modify_metadef_tag",
        "add_metadef_tag",
        "add_metadef_tags",
        "delete_metadef_tag",
        "delete_metadef_tags",
    ):
        assert name in rules, name
