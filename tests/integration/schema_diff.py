"""Schema snapshots (SQLAlchemy's inspector) and the rule each migration phase keeps: an expand
revision only adds (tables, columns an old node's INSERT can leave out, indexes and
constraints), a contract revision only removes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

IGNORED_TABLES = frozenset({"alembic_version"})


@dataclass(frozen=True)
class Snapshot:
    tables: frozenset[str] = frozenset()
    # (kind, table, name) -> description; kinds: column, index, unique, foreign_key, primary_key
    items: dict[tuple[str, str, str], Any] = field(default_factory=dict)


def snapshot(connection: Connection) -> Snapshot:
    inspector = sa.inspect(connection)
    tables = frozenset(inspector.get_table_names()) - IGNORED_TABLES
    items: dict[tuple[str, str, str], Any] = {}
    for table in tables:
        for column in inspector.get_columns(table):
            items["column", table, column["name"]] = (
                str(column["type"]),
                column["nullable"],
                column.get("default"),
            )
        for index in inspector.get_indexes(table):
            items["index", table, str(index["name"])] = (
                tuple(index["column_names"]),
                index["unique"],
            )
        for unique in inspector.get_unique_constraints(table):
            items["unique", table, str(unique["name"])] = tuple(unique["column_names"])
        for key in inspector.get_foreign_keys(table):
            name = str(key["name"] or key["constrained_columns"])
            items["foreign_key", table, name] = (
                tuple(key["constrained_columns"]),
                key["referred_table"],
                tuple(key["referred_columns"]),
                (key.get("options") or {}).get("ondelete"),
            )
        primary = inspector.get_pk_constraint(table)
        items["primary_key", table, "pk"] = tuple(primary["constrained_columns"])
    return Snapshot(tables, items)


def violations(phase: str, before: Snapshot, after: Snapshot) -> list[str]:
    """What a revision of `phase` did that its phase forbids (empty: it kept the rule)."""
    added = sorted(set(after.items) - set(before.items))
    removed = sorted(set(before.items) - set(after.items))
    changed = sorted(
        k for k in set(before.items) & set(after.items) if before.items[k] != after.items[k]
    )
    problems = [f"changed {kind} {table}.{name}" for kind, table, name in changed]
    if phase == "expand":
        problems += [f"removed table {t}" for t in sorted(before.tables - after.tables)]
        problems += [f"removed {kind} {table}.{name}" for kind, table, name in removed]
        for kind, table, name in added:
            if kind == "column" and table in before.tables:
                _, nullable, default = after.items[kind, table, name]
                if not nullable and default is None:
                    problems.append(f"added NOT NULL column {table}.{name} without a default")
            if kind == "primary_key" and table in before.tables:
                problems.append(f"added primary key to {table}")
    elif phase == "contract":
        problems += [f"added table {t}" for t in sorted(after.tables - before.tables)]
        problems += [f"added {kind} {table}.{name}" for kind, table, name in added]
    else:
        problems.append(f"unknown phase {phase!r}")
    return problems
