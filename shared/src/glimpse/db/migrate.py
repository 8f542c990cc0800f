"""Run Alembic migrations programmatically (no alembic.ini to ship or find), by phase.

Revisions are `NNNN_expand` or `NNNN_contract`, on two chains, as Glance's expand and contract
branches: each expand revision revises the previous expand revision; each contract revision
revises the previous contract revision (the first one revises `0001_expand`) and names in
`depends_on` the expand revision it follows. Expand revisions only add, so the previous
release's code runs on an expanded schema; data migrations (glimpse.db.data_migrations) then
move rows to their new shape; contract revisions only remove, once no node runs old code.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection

from glimpse.db import data_migrations
from glimpse.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_(expand|contract)$")


class Phase(enum.StrEnum):
    EXPAND = "expand"
    CONTRACT = "contract"


class Step(enum.IntEnum):
    """What `glimpse-manage db check` says is next, as its exit code (Glance's codes)."""

    NONE = 0
    EXPAND = 3
    MIGRATE = 4
    CONTRACT = 5


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def phase_of(revision: str) -> Phase:
    match = _NAME.match(revision)
    if match is None:
        msg = f"revision {revision!r} is not named NNNN_expand or NNNN_contract"
        raise ValueError(msg)
    return Phase(match.group(2))


def revisions() -> list[Script]:
    """Every revision, oldest first (by number: a contract revision follows the expand
    revisions it depends on)."""
    return sorted(_scripts().walk_revisions(), key=lambda script: script.revision)


def branch_head(phase: Phase) -> str | None:
    """The newest revision of a phase (None: the phase has no revision yet)."""
    heads = [head for head in _scripts().get_heads() if phase_of(head) == phase]
    if not heads:
        return None
    if len(heads) > 1:
        msg = f"{phase} has several heads: {heads}"
        raise RuntimeError(msg)
    return heads[0]


def head_revision() -> str | None:
    """The newest revision of all (a contract one when the newest release has one)."""
    every = revisions()
    return every[-1].revision if every else None


def applied(current: set[str]) -> set[str]:
    """The revisions applied to a database whose version table holds `current`: those and
    all they revise or depend on."""
    scripts = _scripts()
    seen: set[str] = set()
    todo = list(current)
    while todo:
        revision = todo.pop()
        if revision in seen:
            continue
        seen.add(revision)
        script = scripts.get_revision(revision)
        if script is None:  # pragma: no cover -- a database newer than this code
            continue
        todo.extend(_names(script.down_revision))
        todo.extend(_names(script.dependencies))
    return seen


def _names(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


async def upgrade(database: Database, revision: str = "heads") -> None:
    def _run(connection: Connection) -> None:
        command.upgrade(_config(connection), revision)

    async with database.writer_engine.begin() as connection:
        await connection.run_sync(_run)


async def current_revisions(database: Database) -> set[str]:
    def _read(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with database.reader_engine.connect() as connection:
        return await connection.run_sync(_read)


async def current_revision(database: Database) -> str | None:
    """The newest applied revision (by number), None before the first migration."""
    current = await current_revisions(database)
    return max(current) if current else None


@dataclass(frozen=True, slots=True)
class Status:
    applied: set[str]
    expand_head: str | None
    contract_head: str | None
    pending_data: list[str]

    @property
    def next_step(self) -> Step:
        if self.expand_head is not None and self.expand_head not in self.applied:
            return Step.EXPAND
        if self.pending_data:
            return Step.MIGRATE
        if self.contract_head is not None and self.contract_head not in self.applied:
            return Step.CONTRACT
        return Step.NONE


async def status(database: Database) -> Status:
    done = applied(await current_revisions(database))
    expand_head = branch_head(Phase.EXPAND)
    pending = (
        await data_migrations.pending(database)
        if expand_head is not None and expand_head in done
        else []
    )
    return Status(done, expand_head, branch_head(Phase.CONTRACT), pending)
