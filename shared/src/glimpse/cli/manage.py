"""`glimpse-manage`: database migrations, metadata definitions and the sample configuration."""

from __future__ import annotations

import argparse
import asyncio
import sys

from glimpse.cli.common import settings_or_exit
from glimpse.cli.metadefs import add_metadef_commands, run_metadef_command
from glimpse.config.sample import render
from glimpse.db import migrate
from glimpse.db.engine import Database


async def _db_sync(connection: str) -> None:
    database = Database.from_url(connection, pool_size=1)
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()


async def _db_version(connection: str) -> str | None:
    database = Database.from_url(connection, pool_size=1)
    try:
        return await migrate.current_revision(database)
    finally:
        await database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glimpse-manage")
    parser.add_argument("--config-file", help="glance-api.conf style file (or $GLIMPSE_CONFIG)")
    commands = parser.add_subparsers(dest="group", required=True)
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="command", required=True)
    db_commands.add_parser("sync", help="upgrade the schema to the newest revision")
    db_commands.add_parser("version", help="print the schema revision")
    add_metadef_commands(db_commands)
    config = commands.add_parser("config", help="configuration")
    config_commands = config.add_subparsers(dest="command", required=True)
    config_commands.add_parser("sample", help="print the sample configuration file")
    args = parser.parse_args(argv)

    if args.group == "config":
        sys.stdout.write(render())
        return 0
    settings = settings_or_exit(parser.prog, args.config_file)
    connection = settings.database.connection
    if args.command.endswith("_metadefs"):
        return run_metadef_command(args, settings)
    if args.command == "sync":
        asyncio.run(_db_sync(connection))
        print(f"Database is at revision {migrate.head_revision()}")  # noqa: T201
    else:
        print(asyncio.run(_db_version(connection)) or "None")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
