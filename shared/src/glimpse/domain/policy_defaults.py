"""The default policy rules: Glance's names with Glance 33's secure-RBAC defaults.

Project-scoped roles only: `admin` everywhere, `member` of the owning project for changes,
`reader` of the owning (or member) project for reads, and `service` where Glance has a
service-to-service API. Operators override any of these in `[oslo_policy] policy_file`.

Every rule has Glance's `scope_types` (project), and the rules Glance gave a deprecated default
carry it too (`rule:default`, i.e. anyone), which oslo.policy OR's in only under
`[oslo_policy] enforce_new_defaults = false`.
"""

from __future__ import annotations

from typing import Final

from oslo_policy.policy import DeprecatedRule, RuleDefault

ADMIN: Final = "rule:context_is_admin"
PROJECT_MEMBER: Final = "role:member and project_id:%(project_id)s"
PROJECT_READER: Final = "role:reader and project_id:%(project_id)s"
IMAGE_MEMBER: Final = "project_id:%(member_id)s"
# Who may see an image at all (the database layer has already hidden shared images from
# projects that are not members, so `shared` here means "shared with the caller").
READABLE: Final = (
    f"project_id:%(project_id)s or {IMAGE_MEMBER} or 'community':%(visibility)s"
    " or 'public':%(visibility)s or 'shared':%(visibility)s"
)

ADMIN_OR_PROJECT_MEMBER: Final = f"{ADMIN} or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER: Final = f"{ADMIN} or ({PROJECT_READER})"
LEGACY_DEFAULT: Final = "rule:default"
_PROJECT = ["project"]
_LEGACY_REASON = "The image API now supports roles."


def _rule(
    name: str, check: str, description: str, *, legacy: str | None = LEGACY_DEFAULT
) -> RuleDefault:
    """A project-scoped rule; `legacy` is its deprecated default (None: it has none)."""
    deprecated = None
    if legacy is not None:
        deprecated = DeprecatedRule(
            name=name,
            check_str=legacy,
            deprecated_reason=_LEGACY_REASON,
            deprecated_since="W",  # Wallaby, as in Glance
        )
    return RuleDefault(
        name=name,
        check_str=check,
        description=description,
        scope_types=_PROJECT,
        deprecated_rule=deprecated,
    )


BASE_RULES: Final = (
    RuleDefault(
        "default",
        "",
        description="Rule for policies a policy file leaves undefined.",
        deprecated_rule=DeprecatedRule(
            name="default",
            check_str=ADMIN,
            deprecated_reason="Policies left out of a policy file take the defaults in code.",
            deprecated_since="W",
        ),
    ),
    RuleDefault("context_is_admin", "role:admin", description="Who is an admin."),
    RuleDefault(
        "service_api",
        "role:service or role:admin",
        description="Service-to-service APIs (admin kept for services without a service token).",
    ),
)

IMAGE_RULES: Final = (
    _rule("get_images", ADMIN_OR_PROJECT_READER, "List images."),
    _rule("get_image", f"{ADMIN} or (role:reader and ({READABLE}))", "Show an image."),
    _rule(
        "add_image",
        f"{ADMIN} or ({PROJECT_MEMBER} and project_id:%(owner)s)",
        "Create an image (owned by the caller's project unless admin).",
    ),
    _rule("modify_image", ADMIN_OR_PROJECT_MEMBER, "Update an image or its tags."),
    _rule("delete_image", ADMIN_OR_PROJECT_MEMBER, "Delete an image."),
    _rule("publicize_image", ADMIN, "Make an image public.", legacy=None),
    _rule("communitize_image", ADMIN_OR_PROJECT_MEMBER, "Make an image community."),
    _rule("upload_image", ADMIN_OR_PROJECT_MEMBER, "Upload image data."),
    _rule("download_image", f"{ADMIN} or (role:member and ({READABLE}))", "Download image data."),
    _rule("deactivate", ADMIN_OR_PROJECT_MEMBER, "Deactivate an image."),
    _rule("reactivate", ADMIN_OR_PROJECT_MEMBER, "Reactivate an image."),
    _rule("copy_image", ADMIN, "Copy an image to other stores.", legacy=None),
    _rule(
        "download_from_store",
        f"{ADMIN} or (role:member and ({READABLE}))",
        "Download image data from chosen stores (?prefer=).",
        legacy=None,
    ),
)

LOCATION_RULES: Final = (
    _rule("get_image_location", ADMIN_OR_PROJECT_READER, "See an image's locations."),
    _rule("delete_image_location", ADMIN, "Remove a location and its data."),
    _rule("set_image_location", ADMIN_OR_PROJECT_MEMBER, "Add or replace locations (patch)."),
    _rule(
        "add_image_location",
        f"rule:service_api or ({PROJECT_MEMBER} and project_id:%(owner)s)",
        "Add a location to a queued image (2.17).",
        legacy=None,
    ),
    _rule(
        "fetch_image_location",
        "rule:service_api",
        "List an image's locations (2.17).",
        legacy=None,
    ),
)

MEMBER_RULES: Final = (
    _rule("add_member", ADMIN_OR_PROJECT_MEMBER, "Share an image with a project."),
    _rule("delete_member", ADMIN_OR_PROJECT_MEMBER, "Stop sharing an image with a project."),
    _rule(
        "get_member",
        f"{ADMIN} or (role:reader and (project_id:%(project_id)s or {IMAGE_MEMBER}))",
        "Show an image member.",
    ),
    _rule(
        "get_members",
        f"{ADMIN} or (role:reader and (project_id:%(project_id)s or {IMAGE_MEMBER}))",
        "List image members.",
    ),
    _rule(
        "modify_member",
        f"{ADMIN} or (role:member and {IMAGE_MEMBER})",
        "Accept or reject a shared image (the member project answers).",
    ),
)

TASK_RULES: Final = (
    _rule("get_task", "rule:default", "Show a task."),
    _rule("get_tasks", "rule:default", "List tasks."),
    _rule("add_task", "rule:default", "Create a task."),
    _rule("modify_task", "rule:default", "Change a task."),
    _rule("tasks_api_access", ADMIN, "Use the tasks API at all.", legacy=None),
)

DISCOVERY_RULES: Final = (
    _rule(
        "stores_info_detail",
        f"{ADMIN} or rule:service_api",
        "Show store details.",
        legacy=ADMIN,
    ),
)

# Metadata definitions: reads for readers of the owning project and of public namespaces,
# every change for admins (`metadef_admin`), as in Glance 33.
METADEF_ADMIN: Final = "rule:metadef_admin"
METADEF_READER: Final = (
    f"{ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))"
)


def _metadef_rules() -> tuple[RuleDefault, ...]:
    reads = {
        "get_metadef_namespace": "Show a namespace.",
        "get_metadef_object": "Show an object of a namespace.",
        "get_metadef_objects": "List the objects of a namespace.",
        "list_metadef_resource_types": "List resource types, or a namespace's associations.",
        "get_metadef_resource_type": "See a namespace's resource type association.",
        "get_metadef_property": "Show a property of a namespace.",
        "get_metadef_properties": "List the properties of a namespace.",
        "get_metadef_tag": "Show a tag of a namespace.",
        "get_metadef_tags": "List the tags of a namespace.",
    }
    changes = {
        "add_metadef_namespace": "Create a namespace.",
        "modify_metadef_namespace": "Update a namespace.",
        "delete_metadef_namespace": "Delete a namespace, or all its objects, properties or tags.",
        "add_metadef_object": "Create an object in a namespace.",
        "modify_metadef_object": "Update an object of a namespace.",
        "delete_metadef_object": "Delete an object of a namespace.",
        "add_metadef_resource_type_association": "Associate a namespace with a resource type.",
        "remove_metadef_resource_type_association": "Remove a resource type association.",
        "add_metadef_property": "Create a property in a namespace.",
        "modify_metadef_property": "Update a property of a namespace.",
        "remove_metadef_property": "Delete a property of a namespace.",
        "add_metadef_tag": "Create a tag in a namespace.",
        "add_metadef_tags": "Create tags in a namespace (replacing or appending).",
        "modify_metadef_tag": "Rename a tag of a namespace.",
        "delete_metadef_tag": "Delete a tag of a namespace.",
        "delete_metadef_tags": "Delete every tag of a namespace.",
    }
    return (
        RuleDefault("metadef_default", "", description="Old default of the metadef reads."),
        RuleDefault("metadef_admin", ADMIN, description="Who may change metadata definitions."),
        _rule("get_metadef_namespaces", ADMIN_OR_PROJECT_READER, "List namespaces."),
        *(_rule(name, METADEF_READER, text) for name, text in reads.items()),
        *(_rule(name, METADEF_ADMIN, text) for name, text in changes.items()),
    )


METADEF_RULES: Final = _metadef_rules()

_MANAGE_CACHE: Final = "rule:manage_image_cache"
CACHE_RULES: Final = (
    _rule("manage_image_cache", ADMIN, "Manage the image cache.", legacy=None),
    _rule("cache_image", ADMIN, "Queue an image for caching.", legacy=_MANAGE_CACHE),
    _rule("cache_list", ADMIN, "List the cache's state.", legacy=_MANAGE_CACHE),
    _rule("cache_delete", ADMIN, "Delete images from the cache or queue.", legacy=_MANAGE_CACHE),
    _rule("cache_clean", ADMIN, "Clean stalled and invalid cache files.", legacy=None),
    _rule("cache_prune", ADMIN, "Prune the cache to its size limit.", legacy=None),
    _rule("list_cached_nodes", ADMIN, "List the nodes that cache an image.", legacy=None),
)

RULES: Final = (
    *BASE_RULES,
    *IMAGE_RULES,
    *LOCATION_RULES,
    *MEMBER_RULES,
    *TASK_RULES,
    *DISCOVERY_RULES,
    *METADEF_RULES,
    *CACHE_RULES,
)
