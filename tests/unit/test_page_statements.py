"""The usual list page's statement is built once per shape and shared by every caller: the
caller's project must stay a bound parameter of it (given per request), never a value baked
into it, and the cache of shapes stays bounded."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql

from glimpse.context import RequestContext
from glimpse.db.repositories.image_lookup import _LISTED
from glimpse.db.repositories.images import _plain_page, page_parameters, page_statement
from glimpse.domain.listing import ListQuery


def test_one_statement_for_every_project_with_the_project_bound_per_request() -> None:
    alice = RequestContext(project_id="project-alice", user_id="a")
    bob = RequestContext(project_id="project-bob", user_id="b")
    query = ListQuery(limit=20)
    statement = page_statement(alice, query, None, _LISTED[True])
    assert page_statement(bob, query, None, _LISTED[True]) is statement
    compiled = statement.compile(dialect=postgresql.dialect())
    assert "project-alice" not in str(compiled)
    assert compiled.params["project"] is None  # no value of its own: the caller's is bound
    assert page_parameters(alice) == {"project": "project-alice"}
    assert page_parameters(bob) == {"project": "project-bob"}


def test_a_caller_without_a_project_reads_with_no_project_parameter() -> None:
    nobody = RequestContext(project_id=None, user_id="n")
    statement = page_statement(nobody, ListQuery(limit=5), None, _LISTED[False])
    assert "project" not in statement.compile(dialect=postgresql.dialect()).params
    assert page_parameters(nobody) == {}


def test_the_cache_of_page_shapes_is_bounded() -> None:
    ctx = RequestContext(project_id="p", user_id="u")
    for limit in range(1, 600):
        page_statement(ctx, ListQuery(limit=limit), None, _LISTED[True])
    info = _plain_page.cache_info()
    assert info.maxsize == 256
    assert info.currsize <= 256
