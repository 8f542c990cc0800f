"""`glimpse-manage`: database migrations, metadata definitions and the sample configuration."""

from __future__ import annotations

import argparse
import sys

from glimpse.cli.common import settings_or_exit
from glimpse.cli.db import add_db_commands, run_db_command
from glimpse.cli.metadefs import add_metadef_commands, run_metadef_command
from glimpse.config.sample import render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glimpse-manage")
    parser.add_argument("--config-file", help="glance-api.conf style file (or $GLIMPSE_CONFIG)")
    commands = parser.add_subparsers(dest="group", required=True)
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="command", required=True)
    add_db_commands(db_commands)
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
    return run_db_command(args, connection)


if __name__ == "__main__":
    sys.exit(main())
