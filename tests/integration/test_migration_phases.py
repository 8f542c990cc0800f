"""Zero-downtime migrations: every expand revision only adds and every contract revision only
removes (the schema compared before and after each revision, on PostgreSQL), the two chains
are shaped as `glimpse-manage db` expects, and the rolling commands keep Glance's order and
exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from schema_diff import Snapshot, snapshot, violations

from glimpse.cli.manage import main
from glimpse.db import migrate
from glimpse.db.engine import Database
from glimpse.db.migrate import Phase

FIRST = "0001_expand"


async def test_every_revision_keeps_its_phase(empty_pg: str) -> None:
    database = Database.from_url(empty_pg, pool_size=1)
    stepped: list[str] = []
    problems: dict[str, list[str]] = {}
    try:
        async with database.reader_engine.connect() as connection:
            before = await connection.run_sync(snapshot)
        for script in migrate.revisions():
            await migrate.upgrade(database, script.revision)
            async with database.reader_engine.connect() as connection:
                after = await connection.run_sync(snapshot)
            found = violations(migrate.phase_of(script.revision), before, after)
            if found:
                problems[script.revision] = found
            assert after != before, f"{script.revision} changed nothing"
            stepped.append(script.revision)
            before = after
        assert await migrate.current_revision(database) == migrate.head_revision()
    finally:
        await database.dispose()
    assert problems == {}
    assert stepped == [script.revision for script in migrate.revisions()]
    assert stepped[0] == FIRST


def _table(name: str, *columns: tuple[str, bool, str | None]) -> dict[tuple[str, str, str], object]:
    items: dict[tuple[str, str, str], object] = {
        ("column", name, column): ("VARCHAR", nullable, default)
        for column, nullable, default in columns
    }
    items["primary_key", name, "pk"] = ("id",)
    return items


def test_the_check_fails_a_revision_that_does_both() -> None:
    base = Snapshot(
        frozenset({"images"}), _table("images", ("id", False, None), ("old", True, None))
    )
    added_and_dropped = Snapshot(
        frozenset({"images"}), _table("images", ("id", False, None), ("new", True, None))
    )
    assert violations("expand", base, added_and_dropped) == ["removed column images.old"]
    assert violations("contract", base, added_and_dropped) == ["added column images.new"]
    required = Snapshot(
        frozenset({"images"}),
        _table("images", ("id", False, None), ("old", True, None), ("new", False, None)),
    )
    assert violations("expand", base, required) == [
        "added NOT NULL column images.new without a default"
    ]
    defaulted = Snapshot(
        frozenset({"images"}),
        _table("images", ("id", False, None), ("old", True, None), ("new", False, "0")),
    )
    assert violations("expand", base, defaulted) == []
    tightened = Snapshot(
        frozenset({"images"}), _table("images", ("id", False, None), ("old", False, None))
    )
    assert violations("contract", base, tightened) == ["changed column images.old"]
    dropped = Snapshot(frozenset({"images"}), _table("images", ("id", False, None)))
    assert violations("contract", base, dropped) == []


def test_expand_and_contract_chains() -> None:
    """Each expand revision revises the previous one; each contract revision revises the
    previous contract revision (the first, 0001_expand) and depends on an older expand one."""
    previous = {Phase.EXPAND: None, Phase.CONTRACT: FIRST}
    expand_seen: set[str] = set()
    for script in migrate.revisions():
        phase = migrate.phase_of(script.revision)
        if script.revision == FIRST:
            assert script.down_revision is None
        else:
            assert script.down_revision == previous[phase], script.revision
        if phase is Phase.CONTRACT:
            dependencies = migrate._names(script.dependencies)  # noqa: SLF001 -- same normalising
            assert dependencies, f"{script.revision} names no expand revision in depends_on"
            assert set(dependencies) <= expand_seen, script.revision
        else:
            expand_seen.add(script.revision)
        previous[phase] = script.revision
    assert migrate.branch_head(Phase.EXPAND) == previous[Phase.EXPAND]


def manage(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> int:
    monkeypatch.setenv("GLIMPSE_DATABASE__CONNECTION", url)
    monkeypatch.delenv("GLIMPSE_CONFIG", raising=False)
    return main(["db", *args])


def add_legacy_location(url: str, count: int = 1) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for n in range(count):
            connection.execute(
                sa.text(
                    "INSERT INTO images (id, status, visibility, min_disk, min_ram, protected,"
                    " os_hidden, created_at, deleted) VALUES"
                    " (:id, 'active', 'private', 0, 0, false, false, '2019-10-16', false)"
                ),
                {"id": f"legacy-{n}"},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO image_locations (image_id, value, meta_data, status,"
                    " created_at, attempts) VALUES (:id, :url, :meta, 'active', '2019-10-16', 0)"
                ),
                {"id": f"legacy-{n}", "url": f"file:///srv/{n}", "meta": '{"backend": "fast"}'},
            )
    engine.dispose()


def test_rolling_commands_keep_glance_order_and_exit_codes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'rolling.sqlite'}"
    assert manage(monkeypatch, url, "version") == 0
    assert capsys.readouterr().out.strip() == "None"
    assert manage(monkeypatch, url, "check") == 3
    assert "db expand" in capsys.readouterr().out
    # Nothing runs out of order.
    assert manage(monkeypatch, url, "migrate") == 1
    assert "before database expansion" in capsys.readouterr().err
    assert manage(monkeypatch, url, "contract") == 1
    assert "before database expansion" in capsys.readouterr().err
    assert manage(monkeypatch, url, "expand") == 0
    expand_head = migrate.branch_head(Phase.EXPAND)
    assert f"current revision(s): {expand_head}" in capsys.readouterr().out
    # A row of the pre-Train shape: migrate is next, and contract waits for it.
    add_legacy_location(url, 3)
    assert manage(monkeypatch, url, "check") == 4
    assert "db migrate" in capsys.readouterr().out
    assert manage(monkeypatch, url, "contract") == 1
    assert "before data migration is complete" in capsys.readouterr().err
    assert manage(monkeypatch, url, "migrate", "--batch-size", "2") == 0
    assert capsys.readouterr().out.strip() == "Migrated 3 rows"
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT meta_data FROM image_locations")).scalars()
        assert sorted(rows) == ['{"store": "fast"}'] * 3
    engine.dispose()
    # No contract revision in this release: nothing is left.
    assert manage(monkeypatch, url, "check") == 0
    assert "up to date" in capsys.readouterr().out
    for command in ("expand", "migrate", "contract", "sync"):
        assert manage(monkeypatch, url, command) == 0
        assert capsys.readouterr().out.strip() == "Database is up to date. No migrations needed."
    assert manage(monkeypatch, url, "version") == 0
    assert capsys.readouterr().out.strip() == migrate.head_revision()


def test_sync_runs_every_step_offline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'offline.sqlite'}"
    assert manage(monkeypatch, url, "expand") == 0
    add_legacy_location(url)
    assert manage(monkeypatch, url, "check") == 4
    capsys.readouterr()
    assert manage(monkeypatch, url, "sync") == 0
    out = capsys.readouterr().out
    assert "Migrated 1 rows" in out
    assert out.strip().endswith("Database is synced successfully.")
    assert manage(monkeypatch, url, "check") == 0
