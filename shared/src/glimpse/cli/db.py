"""`glimpse-manage db expand | migrate | contract | check | sync | version`, with the meanings
and exit codes of Glance's `glance-manage db`:

- expand: apply the expand revisions (only additions: old code keeps running);
- migrate: move rows to their new shape (data migrations, in batches);
- contract: apply the contract revisions (only removals), refused before expand and migrate;
- check: exit 0 when up to date, 3 when expand is next, 4 migrate, 5 contract;
- sync: all three, for an offline upgrade;
- version: the applied revision(s), or None.

Refusals and failures exit 1 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

from glimpse.db import data_migrations, migrate
from glimpse.db.engine import Database
from glimpse.db.migrate import Phase, Step

UP_TO_DATE = "Database is up to date. No migrations needed."


class Refused(Exception):
    """The command cannot run now; the message says what to run first."""


def add_db_commands(db_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db_commands.add_parser("sync", help="upgrade offline: expand, migrate and contract")
    db_commands.add_parser("version", help="print the applied schema revision(s)")
    db_commands.add_parser("expand", help="rolling upgrade, step 1: add the new schema")
    migrate_parser = db_commands.add_parser(
        "migrate", help="rolling upgrade, step 2: move rows to their new shape"
    )
    migrate_parser.add_argument(
        "--batch-size",
        type=int,
        default=data_migrations.DEFAULT_BATCH,
        help="rows rewritten per transaction (default %(default)s)",
    )
    db_commands.add_parser("contract", help="rolling upgrade, step 3: remove the old schema")
    db_commands.add_parser(
        "check", help="exit 3, 4 or 5 when expand, migrate or contract is pending; 0 if none"
    )


def _say(line: str) -> None:
    print(line)


async def _upgrade_to(database: Database, target: str) -> None:
    await migrate.upgrade(database, target)
    current = ", ".join(sorted(await migrate.current_revisions(database)))
    _say(f"Upgraded database to: {target}, current revision(s): {current}")


async def expand(database: Database) -> None:
    state = await migrate.status(database)
    if state.next_step is Step.NONE:
        _say(UP_TO_DATE)
    elif state.expand_head is None or state.expand_head in state.applied:
        _say("Database expansion is up to date. No expansion needed.")
    else:
        await _upgrade_to(database, state.expand_head)


async def migrate_data(database: Database, batch_size: int) -> None:
    state = await migrate.status(database)
    if state.next_step is Step.NONE:
        _say(UP_TO_DATE)
        return
    if state.next_step is Step.EXPAND:
        raise Refused(
            "Data migration did not run. Data migration cannot be run before database "
            'expansion. Run database expansion first using "glimpse-manage db expand"'
        )
    if not state.pending_data:
        _say("Database migration is up to date. No migration needed.")
        return
    done = await data_migrations.run(database, batch_size)
    _say(f"Migrated {sum(done.values())} rows")


async def contract(database: Database) -> None:
    state = await migrate.status(database)
    if state.next_step is Step.NONE:
        _say(UP_TO_DATE)
        return
    if state.next_step is Step.EXPAND:
        raise Refused(
            "Database contraction did not run. Database contraction cannot be run before "
            'database expansion. Run database expansion first using "glimpse-manage db expand"'
        )
    if state.next_step is Step.MIGRATE:
        raise Refused(
            "Database contraction did not run. Database contraction cannot be run before "
            'data migration is complete. Run data migration using "glimpse-manage db migrate".'
        )
    await _upgrade_to(database, state.contract_head or "heads")


async def check(database: Database) -> int:
    step = (await migrate.status(database)).next_step
    messages = {
        Step.NONE: "Database is up to date. No upgrades needed.",
        Step.EXPAND: "Your database is not up to date. "
        "Your first step is to run `glimpse-manage db expand`.",
        Step.MIGRATE: "Your database is not up to date. "
        "Your next step is to run `glimpse-manage db migrate`.",
        Step.CONTRACT: "Your database is not up to date. "
        "Your next step is to run `glimpse-manage db contract`.",
    }
    _say(messages[step])
    return int(step)


async def sync(database: Database) -> None:
    if (await migrate.status(database)).next_step is Step.NONE:
        _say(UP_TO_DATE)
        return
    await expand(database)
    await migrate_data(database, data_migrations.DEFAULT_BATCH)
    if migrate.branch_head(Phase.CONTRACT) is not None:
        await contract(database)
    _say("Database is synced successfully.")


async def version(database: Database) -> None:
    current = sorted(await migrate.current_revisions(database))
    _say("\n".join(current) if current else "None")


def run_db_command(args: argparse.Namespace, connection: str) -> int:
    async def call(work: Callable[[Database], Awaitable[int | None]]) -> int | None:
        database = Database.from_url(connection, pool_size=1)
        try:
            return await work(database)
        finally:
            await database.dispose()

    commands: dict[str, Callable[[Database], Awaitable[int | None]]] = {
        "sync": sync,
        "version": version,
        "expand": expand,
        "migrate": lambda database: migrate_data(database, args.batch_size),
        "contract": contract,
        "check": check,
    }
    try:
        code = asyncio.run(call(commands[args.command]))
    except Refused as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return code or 0
