"""The one place that decides who may do what to an image.

Rules are data keyed by Glance's policy names (`policy_defaults.py`), evaluated by oslo.policy
at the entry of each service use case through `enforce(ctx, action, image)`. Operators change
them with `[oslo_policy] policy_file` (YAML or JSON), exactly as for Glance.

oslo.policy is synchronous, but evaluating a rule is pure CPU work on in-memory data: the
policy file is read once when the engine is built (`PolicyEngine`), never while a request
runs, so calling it from the event loop does not block on I/O.

The engine is built once per process from the settings and bound to each request's context at
the request boundary (`PolicyEngine.bind`), so there is no module-level enforcer.

Scope, as oslo.policy 6 (which Glance 33 requires) always enforces it: every image rule has
`scope_types = ["project"]`, so a system- or domain-scoped token is refused whatever its roles.
A caller without a project owns nothing: a missing value never matches another missing value
(`project_id:%(owner)s` with neither a project nor an owner is false, not `None == None`).

`[oslo_policy] enforce_new_defaults = false` brings back Glance's deprecated defaults, OR'ed
with the new ones by oslo.policy (most become "anyone"), together with the ownership checks
Glance's API adds in that mode (`legacy_check`): only the owner (or an admin) changes an image
or its members.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from oslo_config import cfg
from oslo_policy import _checks
from oslo_policy import policy as oslo

from glimpse.context import RequestContext
from glimpse.domain import policy_checks
from glimpse.domain.errors import Forbidden, ImageNotFound
from glimpse.domain.images import Visibility
from glimpse.domain.policy_defaults import RULES


class ImageLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def visibility(self) -> str: ...


class PolicyFileError(ValueError):
    """The policy file cannot be read or parsed (start-up stops)."""


@dataclass(frozen=True, slots=True)
class Target:
    """What a rule looks at: the image (or the one being proposed) and the caller's
    membership of it."""

    owner: str | None
    visibility: str
    image_id: str | None = None  # None: a proposed image, not created yet
    member_status: str | None = None  # the caller's membership status, None if not a member

    @property
    def exists(self) -> bool:
        return self.image_id is not None

    def as_dict(self, ctx: RequestContext) -> dict[str, Any]:
        """The target dict rules see: `project_id` is the owner, `member_id` the caller's
        project when it is a member, as in Glance. Missing values are left out, so a check
        on them fails instead of comparing "None" with "None"."""
        return _present(
            {
                "project_id": self.owner,
                "owner": self.owner,
                "visibility": self.visibility,
                "id": self.image_id,
                "image_id": self.image_id,
                "member_id": ctx.project_id if self.member_status is not None else None,
                "member_status": self.member_status,
            }
        )


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """`values` without its None entries: oslo.policy compares `str(value)`, so a None on both
    sides (a caller without a project, an image without an owner) would match."""
    return {key: value for key, value in values.items() if value is not None}


def proposed(owner: str | None, visibility: str) -> Target:
    """The target of add_image and friends: an image that does not exist yet."""
    return Target(owner=owner, visibility=visibility)


def target_of(image: ImageLike | Target, member_status: str | None = None) -> Target:
    if isinstance(image, Target):
        return image
    return Target(image.owner, image.visibility, image.id, member_status)


def visible(ctx: RequestContext, target: Target) -> bool:
    """Whether the image exists for the caller at all (Glance's database-layer rule, which no
    policy file changes): admins, public and community images, the owner, and for shared
    images the member projects (whatever their answer)."""
    if ctx.is_admin or target.owner is None:
        return True
    if target.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY):
        return True
    if ctx.project_id is not None and ctx.project_id == target.owner:
        return True
    return target.visibility == Visibility.SHARED and target.member_status is not None


# The checks whose answer depends on the target only through `%(name)s` in their match text
# (and on the credentials); any other check (http, a custom one) may read the whole target.
_PLAIN_CHECKS: Final = (
    _checks.AndCheck,
    _checks.OrCheck,
    _checks.NotCheck,
    _checks.TrueCheck,
    _checks.FalseCheck,
    _checks.RuleCheck,
    _checks.GenericCheck,
    _checks.RoleCheck,
)
# Policy answers a process keeps (PolicyEngine.check): callers x rules x the few values of the
# target fields a rule reads; past this many the memo starts again.
_ANSWERS_KEPT: Final = 4096
_TARGET_FIELD = re.compile(r"%\((\w+)\)s")


def _fields_read(
    rules: Mapping[str, _checks.BaseCheck], check: _checks.BaseCheck, seen: set[str]
) -> set[str] | None:
    """The target fields `check` reads; None if it may read others."""
    if type(check) not in _PLAIN_CHECKS or "__call__" in vars(check):
        return None
    if isinstance(check, _checks.AndCheck | _checks.OrCheck):
        children = list(check.rules)
    elif isinstance(check, _checks.NotCheck):
        children = [check.rule]
    elif isinstance(check, _checks.GenericCheck | _checks.RoleCheck):
        match = str(check.match)
        if "%" in _TARGET_FIELD.sub("", match):
            return None  # formatting other than %(name)s: it may read the whole target
        return set(_TARGET_FIELD.findall(match))
    elif isinstance(check, _checks.RuleCheck) and check.match not in seen:
        seen.add(check.match)
        try:
            # A name no rule has is evaluated as the default rule (oslo.policy's Rules look
            # it up on a miss), whose fields it reads.
            children = [rules[check.match]]
        except KeyError:
            children = []  # no default rule either: always false, it reads nothing
    else:
        children = []  # True, False, or a rule already counted
    fields: set[str] = set()
    for child in children:
        read = _fields_read(rules, child, seen)
        if read is None:
            return None
        fields |= read
    return fields


class PolicyEngine:
    """oslo.policy's Enforcer with Glimpse's defaults and the operator's file, loaded once."""

    def __init__(
        self, policy_file: Path | None = None, *, enforce_new_defaults: bool = True
    ) -> None:
        # A private ConfigOpts: oslo.policy reads its options from one, and the process-wide
        # cfg.CONF would leak state between engines (and tests).
        policy_checks.install()
        conf = cfg.ConfigOpts()
        conf([], project="glimpse", default_config_files=[], default_config_dirs=[])
        # Without a file, name one that cannot exist so the standard directories
        # (/etc/glimpse, ~/.glimpse) are not searched behind the operator's back.
        path = policy_file.resolve() if policy_file is not None else Path("/nonexistent/policy")
        self.enforcer = oslo.Enforcer(conf, policy_file=str(path))
        conf.set_override("policy_dirs", [], "oslo_policy")
        conf.set_override("enforce_new_defaults", enforce_new_defaults, "oslo_policy")
        self.legacy = not enforce_new_defaults
        # As Glance: the notice for each rule whose default changed is not worth a log line.
        self.enforcer.suppress_default_change_warnings = True
        self.enforcer.register_defaults(RULES)
        try:
            self.enforcer.load_rules()
        except Exception as exc:
            raise PolicyFileError(f"policy file {policy_file} is invalid: {exc}") from exc
        # Rules are in memory now; stop oslo.policy from checking the file on every call.
        self.enforcer.use_conf = False
        self._reads: dict[str, tuple[str, ...] | None] = {}
        self._answers: dict[tuple[Any, ...], bool] = {}
        self._callers: dict[tuple[Any, ...], tuple[dict[str, Any], tuple[Any, ...]]] = {}

    def fields_read(self, action: str) -> tuple[str, ...] | None:
        """The target fields `action`'s rule reads (None: possibly any); the rules never change
        once loaded, so this is worked out once per action."""
        if action not in self._reads:
            rules = self.enforcer.rules
            read = _fields_read(rules, rules[action], set()) if action in rules else None
            self._reads[action] = None if read is None else tuple(sorted(read))
        return self._reads[action]

    def check(self, ctx: RequestContext, action: str, target: dict[str, Any]) -> bool:
        if action not in self.enforcer.registered_rules:
            raise oslo.PolicyNotRegistered(action)
        # A rule that reads only the credentials below and some target fields gives the same
        # answer for the same values (the rules never change once loaded): every request of
        # a caller asks the same few questions, each evaluated once per process.
        creds, creds_key = self._credentials(ctx)
        fields = self.fields_read(action)
        if fields is None:
            return self._evaluate(action, target, creds)
        # Everything the rule is given of the caller, and the target fields it reads.
        key = (action, creds_key, *(target.get(name) for name in fields))
        try:
            answer = self._answers.get(key)
        except TypeError:  # a target value that cannot be a key (a list): asked every time
            return self._evaluate(action, target, creds)
        if answer is None:
            if len(self._answers) >= _ANSWERS_KEPT:
                self._answers.clear()  # many callers: start again rather than grow
            answer = self._answers[key] = self._evaluate(action, target, creds)
        return answer

    def _evaluate(self, action: str, target: dict[str, Any], creds: dict[str, Any]) -> bool:
        # A copy of the remembered credentials: nothing a rule does may change them.
        return bool(self.enforcer.enforce(action, _present(target), dict(creds)))

    def _credentials(self, ctx: RequestContext) -> tuple[dict[str, Any], tuple[Any, ...]]:
        """The caller's credentials and their key in the remembered answers, worked out once
        per caller (a request asks several questions, and a caller many requests)."""
        caller = (
            ctx.user_id,
            ctx.project_id,
            ctx.system_scope,
            ctx.domain_id,
            ctx.roles,
            ctx.service_roles,
        )
        known = self._callers.get(caller)
        if known is None:
            if len(self._callers) >= _ANSWERS_KEPT:
                self._callers.clear()  # many callers: start again rather than grow
            creds = _credentials(ctx)
            key = tuple(
                (name, tuple(value) if isinstance(value, list) else value)
                for name, value in creds.items()
            )
            known = self._callers[caller] = (creds, key)
        return known

    def bind(self, ctx: RequestContext) -> RequestContext:
        """`ctx` with this engine attached and is_admin decided by `context_is_admin`."""
        is_admin = self.check(ctx, "context_is_admin", {"project_id": ctx.project_id})
        return ctx.evolve(policy=self, is_admin=is_admin)


def _credentials(ctx: RequestContext) -> dict[str, Any]:
    """What a rule is given of the caller (oslo.policy's creds); also what a remembered answer
    is keyed on, so the two never differ."""
    return _present(
        {
            "user_id": ctx.user_id,
            "project_id": ctx.project_id,
            # The token's scope: oslo.policy refuses a rule whose scope_types lack it.
            "system": ctx.system_scope,
            "domain_id": ctx.domain_id,
            "roles": sorted(ctx.roles),
            # The roles of an X-Service-Token, for rules such as `service_roles:service`.
            "service_roles": sorted(ctx.service_roles),
        }
    )


# What Glance's API checks besides the rules when enforce_new_defaults is false (its legacy
# defaults let anyone through, so ownership is checked in code): the action's error message.
_LEGACY_OWNER_ONLY: Final = {
    "modify_image": "You do not own this image",
    "delete_image": "You do not own this image",
    "upload_image": "You do not own this image",
    "deactivate": "You do not own this image",
    "reactivate": "You do not own this image",
    "delete_image_location": "You do not own this image",
    "add_member": "You are not permitted to create image members for the image.",
    "delete_member": "You cannot delete image member.",
}


def legacy_check(ctx: RequestContext, action: str, target: Target) -> None:
    """Glance's ownership checks under legacy defaults; nothing with the new defaults."""
    engine = ctx.policy
    if engine is None or not engine.legacy or ctx.is_admin:
        return
    owns = ctx.project_id is not None and ctx.project_id == target.owner
    if action == "add_image" and not owns:
        raise Forbidden(f"You are not permitted to create images owned by '{target.owner}'.")
    if action in _LEGACY_OWNER_ONLY and not owns:
        raise Forbidden(_LEGACY_OWNER_ONLY[action])
    if action == "modify_member" and owns:
        raise Forbidden("You are not permitted to modify 'status' on this image member.")


def _engine(ctx: RequestContext) -> PolicyEngine:
    if ctx.policy is None:
        msg = "no policy engine is bound to this request context"
        raise RuntimeError(msg)
    return ctx.policy


def _rule(ctx: RequestContext, action: str, target: Target | None) -> bool:
    if target is None:
        # Nothing specific (list, create a task): the caller's own project is the target.
        data: dict[str, Any] = _present({"project_id": ctx.project_id, "owner": ctx.project_id})
    else:
        data = target.as_dict(ctx)
    return _engine(ctx).check(ctx, action, data)


def allowed(
    ctx: RequestContext,
    action: str,
    image: ImageLike | Target | None = None,
    *,
    member_status: str | None = None,
) -> bool:
    target = None if image is None else target_of(image, member_status)
    if target is not None and target.exists and not visible(ctx, target):
        return False
    return _rule(ctx, action, target)


def allowed_each(ctx: RequestContext, action: str, targets: Sequence[Target]) -> list[bool]:
    """allowed() for each of many images (a list page): the rule is evaluated once per
    distinct value of the target fields it reads, since the same caller, rule and fields give
    the same answer."""
    engine = _engine(ctx)
    fields = engine.fields_read(action)
    answers: dict[tuple[Any, ...], bool] = {}
    decisions = []
    for target in targets:
        if target.exists and not visible(ctx, target):
            decisions.append(False)
            continue
        data = target.as_dict(ctx)
        if fields is None:
            decisions.append(engine.check(ctx, action, data))
            continue
        key = tuple(data.get(name) for name in fields)
        answer = answers.get(key)
        if answer is None:
            answer = answers[key] = engine.check(ctx, action, data)
        decisions.append(answer)
    return decisions


def enforce(
    ctx: RequestContext,
    action: str,
    image: ImageLike | Target | None = None,
    *,
    member_status: str | None = None,
) -> None:
    """Raise if `ctx` may not do `action`; a failed read hides the image (404, never 403)."""
    target = None if image is None else target_of(image, member_status)
    if target is not None and target.exists and not allowed(ctx, "get_image", target):
        raise ImageNotFound(target.image_id or "")
    # A show's action is that read check itself, passed already: not asked twice.
    shown = action == "get_image" and target is not None and target.exists
    if not shown and not allowed(ctx, action, target):
        raise Forbidden(f"You are not authorized to complete {action} action.")
    if target is not None:
        legacy_check(ctx, action, target)
