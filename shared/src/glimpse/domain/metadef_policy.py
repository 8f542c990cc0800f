"""Who may read and change metadata definitions.

Two layers, as in Glance: a namespace exists for the caller only if it is an admin, owns it, or
the namespace is public (a rule no policy file changes); then each use case checks its policy
rule (`policy_defaults.METADEF_RULES`) against the namespace's owner and visibility. A refusal
on a namespace the caller may not read (`get_metadef_namespace`) answers 404, never 403, so
private namespaces of other projects stay invisible.
"""

from __future__ import annotations

from typing import Any, Protocol

from glimpse.context import RequestContext
from glimpse.domain.errors import Forbidden, NotFound
from glimpse.domain.metadefs import PUBLIC

READ_NAMESPACE = "get_metadef_namespace"


class NamespaceLike(Protocol):
    @property
    def namespace(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def visibility(self) -> str: ...


class NamespaceNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"Metadata definition namespace={name} was not found.")


def visible(ctx: RequestContext, namespace: NamespaceLike) -> bool:
    """Whether the namespace exists for the caller at all."""
    if ctx.is_admin or namespace.visibility == PUBLIC:
        return True
    return ctx.project_id is not None and ctx.project_id == namespace.owner


def _target(ctx: RequestContext, namespace: NamespaceLike | None) -> dict[str, Any]:
    if namespace is None:
        return {"project_id": ctx.project_id}
    return {"project_id": namespace.owner, "visibility": namespace.visibility}


def allowed(ctx: RequestContext, action: str, namespace: NamespaceLike | None = None) -> bool:
    if ctx.policy is None:
        msg = "no policy engine is bound to this request context"
        raise RuntimeError(msg)
    return ctx.policy.check(ctx, action, _target(ctx, namespace))


def enforce(ctx: RequestContext, action: str, namespace: NamespaceLike | None = None) -> None:
    """Raise unless `ctx` may do `action` (on `namespace`, or on its own project when there is
    none): 404 when it may not even read the namespace, 403 otherwise."""
    if allowed(ctx, action, namespace):
        return
    if action == READ_NAMESPACE or not allowed(ctx, READ_NAMESPACE, namespace):
        if namespace is None:
            # Glance's answer to a caller who may read no namespace at all (no reader role).
            raise NotFound("The resource could not be found.")
        raise NamespaceNotFound(namespace.namespace)
    raise Forbidden(f"You are not authorized to complete {action} action.")
