"""oslo.policy's evaluation step with the argument count looked up once per check class."""

from __future__ import annotations

from typing import Any

from oslo_policy import _checks

from glimpse.domain import policy_checks


class _Legacy(_checks.Check):
    """A check written for oslo.policy's three-argument call."""

    def __call__(self, target: Any, cred: Any, _enforcer: Any) -> bool:
        return bool(target.get("owner") == cred.get("project_id"))


class _Current(_checks.Check):
    """A check that takes the rule being checked as well."""

    def __call__(self, target: Any, _cred: Any, _enforcer: Any, current_rule: Any = None) -> Any:
        return f"{current_rule}:{target.get('owner')}"


def test_each_check_is_called_as_oslo_policy_would_call_it() -> None:
    policy_checks.install()
    legacy = _Legacy("legacy", "x")
    current = _Current("current", "x")
    for _ in range(2):  # the second round answers from the remembered argument count
        assert _checks._check(legacy, {"owner": "p"}, {"project_id": "p"}, None, "r") is True  # noqa: SLF001 -- the replaced function
        assert _checks._check(legacy, {"owner": "q"}, {"project_id": "p"}, None, "r") is False  # noqa: SLF001 -- the replaced function
        assert _checks._check(current, {"owner": "p"}, {}, None, "rule") == "rule:p"  # noqa: SLF001 -- the replaced function
    rule = _checks.AndCheck([legacy, _checks.NotCheck(_checks.FalseCheck())])
    assert _checks._check(rule, {"owner": "p"}, {"project_id": "p"}, None, None) is True  # noqa: SLF001 -- the replaced function


def test_generic_checks_answer_as_oslo_policy_does() -> None:
    policy_checks.install()
    creds = {"project_id": "p", "roles": ["reader"], "token": {"user": {"id": "u"}}}
    checks = [
        _checks.GenericCheck("'public'", "%(visibility)s"),  # a literal
        _checks.GenericCheck("True", "%(protected)s"),  # a literal that is not a string
        _checks.GenericCheck("project_id", "%(owner)s"),  # a credential
        _checks.GenericCheck("token.user.id", "%(user)s"),  # a credential path
        _checks.GenericCheck("roles", "reader"),  # a match in a list
        _checks.GenericCheck("project_id", "%(missing)s"),  # a key the target lacks
    ]
    targets = [
        {"visibility": "public", "protected": "True", "owner": "p", "user": "u"},
        {"visibility": "private", "protected": "False", "owner": "q", "user": "v"},
    ]
    for _ in range(2):  # the second round answers from the remembered literals
        for check in checks:
            for target in targets:
                expected = check(target, creds, None)  # oslo.policy's own answer
                assert _checks._check(check, target, creds, None, None) is expected  # noqa: SLF001 -- the replaced function
