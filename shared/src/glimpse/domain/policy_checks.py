"""oslo.policy's rule evaluation without its per-check signature introspection.

`oslo_policy._checks._check` calls `inspect.getfullargspec(rule.__call__)` for every check it
evaluates, to learn whether the check takes a fourth argument. A rule such as get_image is a
tree of three or more checks, and a list of 1,000 images evaluates two rules per image: the
introspection alone cost more CPU than everything else the list did. The answer depends only
on the check's class, so it is looked up once per class and remembered; the rule is then
called exactly as oslo.policy calls it.

A generic check (`'public':%(visibility)s`) also parses its left side with ast.literal_eval on
every call, to tell a literal from a credential path; that answer depends only on the text, so
it is remembered per text as well.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from typing import Any

from oslo_policy import _checks

# self, target, creds, enforcer: a fifth parameter is current_rule.
_LEGACY_ARITY = 4
_takes_current_rule: dict[Callable[..., Any], bool] = {}
_original_check = _checks._check  # noqa: SLF001 -- the function this module replaces
_NOT_LITERAL = object()  # a generic check's kind that is a credential path, not a literal
_literals: dict[str, object] = {}


def _generic(rule: _checks.GenericCheck, target: Any, creds: Any) -> bool:  # noqa: ANN401 -- oslo.policy's mappings
    """GenericCheck.__call__ with its literal_eval remembered per kind (same results)."""
    try:
        match = rule.match % target
    except KeyError:
        return False  # a key missing from the target fails the check, as in oslo.policy
    kind = rule.kind
    literal = _literals.get(kind)
    if literal is None:
        try:
            literal = ast.literal_eval(kind)
        except ValueError:
            literal = _NOT_LITERAL
        else:
            literal = str(literal)
        _literals[kind] = literal
    if literal is not _NOT_LITERAL:
        return bool(match == literal)
    return bool(rule._find_in_dict(creds, kind.split("."), match))  # noqa: SLF001 -- oslo.policy's own lookup


def _check(
    rule: _checks.BaseCheck,
    target: Any,  # noqa: ANN401 -- oslo.policy's target mapping
    creds: Any,  # noqa: ANN401 -- oslo.policy's credentials mapping
    enforcer: Any,  # noqa: ANN401 -- oslo.policy's Enforcer
    current_rule: str | None,
) -> Any:  # noqa: ANN401 -- what the check returns (a case rule: its string)
    if type(rule) is _checks.GenericCheck and "__call__" not in vars(rule):
        return _generic(rule, target, creds)
    call = getattr(type(rule), "__call__", None)  # noqa: B004 -- the class's method, not callable()
    if call is None or "__call__" in vars(rule):
        # A check whose instance carries its own __call__: oslo.policy's own way.
        return _original_check(rule, target, creds, enforcer, current_rule)
    takes = _takes_current_rule.get(call)
    if takes is None:
        takes = len(inspect.getfullargspec(rule.__call__).args) > _LEGACY_ARITY
        _takes_current_rule[call] = takes
    if takes:
        return rule(target, creds, enforcer, current_rule)
    return rule(target, creds, enforcer)  # oslo.policy's legacy three-argument checks


def install() -> None:
    """Replace oslo.policy's evaluation step (idempotent; same results, less CPU)."""
    _checks._check = _check  # noqa: SLF001 -- see the module's docstring
