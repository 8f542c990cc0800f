"""The default policy rules per persona, the 404-on-hidden rule, and policy-file overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from oslo_policy.policy import PolicyNotRegistered

from glimpse.context import RequestContext
from glimpse.domain import policy
from glimpse.domain.errors import Forbidden, ImageNotFound
from glimpse.domain.policy import PolicyEngine, PolicyFileError, proposed
from glimpse.domain.policy_defaults import RULES

ENGINE = PolicyEngine()


def ctx(project: str | None, *roles: str) -> RequestContext:
    return ENGINE.bind(RequestContext(project_id=project, user_id="u", roles=frozenset(roles)))


@dataclass(frozen=True)
class Img:
    owner: str | None
    visibility: str
    id: str = "img"


OWNER_MEMBER = ctx("p", "member", "reader")
OWNER_READER = ctx("p", "reader")
OTHER = ctx("q", "member", "reader")
ADMIN = ctx("ops", "admin")
SERVICE = ctx("svc", "service")

PRIVATE = Img("p", "private")
SHARED = Img("p", "shared")
PUBLIC = Img("p", "public")
COMMUNITY = Img("p", "community")

REQUIRED = {
    "get_images",
    "get_image",
    "add_image",
    "modify_image",
    "delete_image",
    "publicize_image",
    "communitize_image",
    "upload_image",
    "download_image",
    "deactivate",
    "reactivate",
    "add_member",
    "get_member",
    "get_members",
    "modify_member",
    "delete_member",
    "copy_image",
    "get_task",
    "get_tasks",
    "add_task",
    "modify_task",
    "tasks_api_access",
    "stores_info_detail",
}


def test_every_glance_rule_is_registered() -> None:
    assert {rule.name for rule in RULES} >= REQUIRED
    assert set(ENGINE.enforcer.registered_rules) >= REQUIRED
    with pytest.raises(PolicyNotRegistered):
        policy.allowed(OWNER_MEMBER, "no_such_rule")


def test_binding_decides_admin_by_context_is_admin() -> None:
    assert ADMIN.is_admin
    assert not OWNER_MEMBER.is_admin
    unbound = RequestContext(project_id="p", user_id="u", roles=frozenset({"member"}))
    with pytest.raises(RuntimeError):
        policy.allowed(unbound, "get_images")


@pytest.mark.parametrize(
    ("action", "owner_member", "owner_reader", "admin"),
    [
        ("get_image", True, True, True),
        ("modify_image", True, False, True),
        ("delete_image", True, False, True),
        ("upload_image", True, False, True),
        ("download_image", True, False, True),
        ("deactivate", True, False, True),
        ("reactivate", True, False, True),
        ("communitize_image", True, False, True),
        ("publicize_image", False, False, True),
        ("copy_image", False, False, True),
        ("add_member", True, False, True),
        ("delete_member", True, False, True),
        ("get_members", True, True, True),
        ("get_member", True, True, True),
        ("modify_member", False, False, True),
    ],
)
def test_owner_project_rules(
    action: str, owner_member: bool, owner_reader: bool, admin: bool
) -> None:
    assert policy.allowed(OWNER_MEMBER, action, SHARED) is owner_member
    assert policy.allowed(OWNER_READER, action, SHARED) is owner_reader
    assert policy.allowed(ADMIN, action, SHARED) is admin


def test_other_projects() -> None:
    # Private and shared images of others do not exist for them; public and community do.
    for image in (PRIVATE, SHARED):
        assert not policy.allowed(OTHER, "get_image", image)
        with pytest.raises(ImageNotFound):
            policy.enforce(OTHER, "delete_image", image)
    for image in (PUBLIC, COMMUNITY):
        assert policy.allowed(OTHER, "get_image", image)
        assert policy.allowed(OTHER, "download_image", image)
        with pytest.raises(Forbidden):
            policy.enforce(OTHER, "modify_image", image)


def test_member_projects_of_a_shared_image() -> None:
    for status in ("pending", "accepted", "rejected"):
        assert policy.allowed(OTHER, "get_image", SHARED, member_status=status)
        assert policy.allowed(OTHER, "download_image", SHARED, member_status=status)
        assert policy.allowed(OTHER, "modify_member", SHARED, member_status=status)
        assert policy.allowed(OTHER, "get_member", SHARED, member_status=status)
        assert not policy.allowed(OTHER, "delete_member", SHARED, member_status=status)
        assert not policy.allowed(OTHER, "add_member", SHARED, member_status=status)
        assert not policy.allowed(OTHER, "modify_image", SHARED, member_status=status)
    # A reader of the member project reads but does not answer or download.
    reader = ctx("q", "reader")
    assert policy.allowed(reader, "get_image", SHARED, member_status="pending")
    assert not policy.allowed(reader, "modify_member", SHARED, member_status="pending")
    assert not policy.allowed(reader, "download_image", SHARED, member_status="pending")


def test_create_and_list() -> None:
    assert policy.allowed(OWNER_MEMBER, "add_image", proposed("p", "shared"))
    assert not policy.allowed(OWNER_MEMBER, "add_image", proposed("q", "shared"))
    assert not policy.allowed(OWNER_READER, "add_image", proposed("p", "shared"))
    assert policy.allowed(ADMIN, "add_image", proposed("q", "shared"))
    assert policy.allowed(OWNER_READER, "get_images")
    assert not policy.allowed(ctx("p"), "get_images")
    with pytest.raises(Forbidden):
        policy.enforce(OWNER_MEMBER, "publicize_image", proposed("p", "public"))


def test_tasks_and_discovery() -> None:
    assert policy.allowed(OWNER_READER, "get_tasks")
    assert not policy.allowed(OWNER_MEMBER, "tasks_api_access")
    assert policy.allowed(ADMIN, "tasks_api_access")
    assert policy.allowed(SERVICE, "stores_info_detail")
    assert not policy.allowed(OWNER_MEMBER, "stores_info_detail")


def test_policy_file_overrides_rules(tmp_path: Path) -> None:
    yaml_file = tmp_path / "policy.yaml"
    yaml_file.write_text('add_image: "role:admin"\n"context_is_admin": "role:cloud-admin"\n')
    engine = PolicyEngine(yaml_file)
    member = engine.bind(RequestContext("p", "u", frozenset({"member", "reader"})))
    assert not policy.allowed(member, "add_image", proposed("p", "shared"))
    # Rules the file leaves out keep their defaults.
    assert policy.allowed(member, "modify_image", PRIVATE)
    assert engine.bind(RequestContext("ops", "u", frozenset({"cloud-admin"}))).is_admin
    assert not engine.bind(RequestContext("ops", "u", frozenset({"admin"}))).is_admin
    json_file = tmp_path / "policy.json"
    json_file.write_text('{"get_images": "!"}')
    engine = PolicyEngine(json_file)
    reader = engine.bind(RequestContext("p", "u", frozenset({"reader"})))
    assert not policy.allowed(reader, "get_images")


def test_invalid_policy_file(tmp_path: Path) -> None:
    broken = tmp_path / "policy.yaml"
    broken.write_text("add_image: [unclosed\n")
    with pytest.raises(PolicyFileError, match=r"policy\.yaml"):
        PolicyEngine(broken)


def test_a_rule_reads_only_the_target_fields_named_in_it(tmp_path: Path) -> None:
    assert ENGINE.fields_read("get_image") == ("member_id", "project_id", "visibility")
    assert ENGINE.fields_read("no_such_rule") is None
    rules = tmp_path / "policy.yaml"
    rules.write_text(
        'get_image: "id:%(id)s or rule:mine"\nmine: "project_id:%(owner)s"\n'
        'download_image: "http://127.0.0.1:1/check"\n'
    )
    engine = PolicyEngine(rules)
    assert engine.fields_read("get_image") == ("id", "owner")
    # An http check is sent the whole target.
    assert engine.fields_read("download_image") is None


def test_each_image_of_a_page_gets_the_answer_allowed_gives(tmp_path: Path) -> None:
    rules = tmp_path / "policy.yaml"
    # One image by id: the rule reads the id, so no answer is shared between images.
    rules.write_text(
        "get_image: \"rule:default_get or 'img-2':%(id)s\"\n"
        'default_get: "project_id:%(project_id)s"\n'
    )
    for engine in (ENGINE, PolicyEngine(rules)):
        caller = engine.bind(RequestContext("q", "u", frozenset({"member", "reader"})))
        images = [
            Img("p", "public", "img-1"),
            Img("p", "public", "img-2"),
            Img("q", "private", "img-3"),
            Img("p", "private", "img-4"),
            Img("p", "shared", "img-5"),
            Img("p", "shared", "img-6"),
        ]
        statuses = [None, None, None, None, "accepted", None]
        targets = [policy.target_of(i, s) for i, s in zip(images, statuses, strict=True)]
        expected = [
            policy.allowed(caller, "get_image", i, member_status=s)
            for i, s in zip(images, statuses, strict=True)
        ]
        assert policy.allowed_each(caller, "get_image", targets) == expected
    assert expected == [False, True, True, False, False, False]


def test_remembered_answers_are_those_of_an_engine_asked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "policy.yaml"
    # Reads the target's id and owner, the caller's project and roles.
    rules.write_text("get_image: \"'img-2':%(id)s or (project_id:%(owner)s and role:member)\"\n")
    # A memo of two answers: the engine starts again often on the way.
    monkeypatch.setattr(policy, "_ANSWERS_KEPT", 2)
    callers = [
        RequestContext(project, "u", frozenset(roles))
        for project in ("p", "q", None)
        for roles in (("member",), ("reader",))
    ]
    targets = [
        {"id": image_id, "owner": owner} for image_id in ("img-1", "img-2") for owner in ("p", "q")
    ]
    questions = [(caller, target) for caller in callers for target in targets]
    expected = [PolicyEngine(rules).check(c, "get_image", t) for c, t in questions]
    reused = PolicyEngine(rules)
    for _ in range(2):  # asked again, the answers are remembered ones or evaluated again
        assert [reused.check(c, "get_image", t) for c, t in questions] == expected
    assert True in expected
    assert False in expected


def test_a_target_value_that_cannot_be_remembered_is_asked_every_time(tmp_path: Path) -> None:
    rules = tmp_path / "policy.yaml"
    rules.write_text("get_image: \"'a':%(tags)s or project_id:%(owner)s\"\n")
    engine = PolicyEngine(rules)
    caller = RequestContext("p", "u", frozenset({"reader"}))
    # A list is no dictionary key: evaluated each time, with the same answers as once.
    assert engine.check(caller, "get_image", {"tags": ["x"], "owner": "p"})
    assert not engine.check(caller, "get_image", {"tags": ["x"], "owner": "q"})
    assert engine.check(caller, "get_image", {"tags": "a", "owner": "q"})
