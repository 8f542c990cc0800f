"""Migrations: glimpse-manage applies them, and they match the table models exactly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from glimpse.db import metadef_tables, migrate, tables  # noqa: F401 -- registers the models
from glimpse.db.engine import Database
from support import command, environment


async def test_models_match_migrations(database: Database) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return list(compare_metadata(context, SQLModel.metadata))

    async with database.reader_engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []
    assert await migrate.current_revision(database) == migrate.head_revision()


def test_revisions_are_named_expand_or_contract() -> None:
    versions = Path(migrate.MIGRATIONS) / "versions"
    names = sorted(p.stem for p in versions.glob("[0-9]*.py"))
    assert names
    for name in names:
        number, phase, *_ = name.split("_")
        assert number.isdigit()
        assert phase in {"expand", "contract"}, name


def test_manage_db_sync_and_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    env = environment(GLIMPSE_DATABASE__CONNECTION=url)

    def manage(*args: str) -> str:
        result = subprocess.run(
            [command("glimpse-manage"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert manage("db", "version") == "None"
    synced = manage("db", "sync")
    assert f"current revision(s): {migrate.head_revision()}" in synced
    assert synced.endswith("Database is synced successfully.")
    assert manage("db", "version") == migrate.head_revision()
    # Running it again is a no-op.
    assert manage("db", "sync") == "Database is up to date. No migrations needed."


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2"])
def test_manage_accepts_glance_postgres_urls(scheme: str, pg_template: str) -> None:
    url = pg_template.replace("postgresql+asyncpg", scheme, 1)
    result = subprocess.run(
        [command("glimpse-manage"), "db", "version"],
        env=environment(GLIMPSE_DATABASE__CONNECTION=url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == migrate.head_revision()
