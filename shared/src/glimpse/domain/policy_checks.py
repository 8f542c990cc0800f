"""oslo.policy's rule evaluation without its per-check signature introspection.

`oslo_policy._checks._check` calls `inspect.getfullargspec(rule.__call__)` for every check it
evaluates, to learn whether the check takes a fourth argument. A rule such as get_image is a
tree of three or more checks, and a list of 1,000 images evaluates two rules per image: the
introspection alone cost more CPU than everything else the list did. The answer depends only
on the check's class, so it is looked up once per class and remembered; the rule is then
called exactly as oslo.policy calls it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from oslo_policy import _checks

# self, target, creds, enforcer: a fifth parameter is current_rule.
_LEGACY_ARITY = 4
_takes_current_rule: dict[Callable[..., Any], bool] = {}
_original_check = _checks._check  # noqa: SLF001 -- the function this module replaces


def _check(
    rule: _checks.BaseCheck,
    target: Any,  # noqa: ANN401 -- oslo.policy's target mapping
    creds: Any,  # noqa: ANN401 -- oslo.policy's credentials mapping
    enforcer: Any,  # noqa: ANN401 -- oslo.policy's Enforcer
    current_rule: str | None,
) -> Any:  # noqa: ANN401 -- what the check returns (a case rule: its string)
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
