"""`glimpse-manage db load_metadefs / unload_metadefs / export_metadefs`, with glance-manage's
options."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.services import metadef_catalog
from glimpse.services.metadef_catalog import DefinitionError, LoadOptions

T = TypeVar("T")


def add_metadef_commands(db_commands: Any) -> None:  # noqa: ANN401 -- argparse's subparsers
    load = db_commands.add_parser(
        "load_metadefs", help="load metadata definition files into the database"
    )
    load.add_argument(
        "--path",
        type=Path,
        help="a directory of *.json files, or one file (default: [DEFAULT] metadata_source_path)",
    )
    load.add_argument(
        "--merge",
        action="store_true",
        help="also load into namespaces already in the database: add what they lack",
    )
    load.add_argument(
        "--prefer_new",
        "--prefer-new",
        dest="prefer_new",
        action="store_true",
        help="with --merge: the files' version replaces what the database has",
    )
    load.add_argument(
        "--overwrite",
        action="store_true",
        help="with --merge: namespaces in the files are deleted and loaded afresh",
    )
    load.add_argument(
        "--if-empty",
        dest="if_empty",
        action="store_true",
        help="load only if the database holds no namespace yet (first start)",
    )
    db_commands.add_parser(
        "unload_metadefs", help="delete every namespace and resource type from the database"
    )
    export = db_commands.add_parser(
        "export_metadefs", help="write every namespace to a file in the load format"
    )
    export.add_argument(
        "--path", type=Path, help="directory to write to (default: metadata_source_path)"
    )


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        database = Database.from_url(settings.database.connection, pool_size=1)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def _load(args: argparse.Namespace, settings: Settings) -> str:
    options = LoadOptions(merge=args.merge, prefer_new=args.prefer_new, overwrite=args.overwrite)
    path: Path = args.path or settings.metadata_source_path
    files = metadef_catalog.read_definitions(path)

    async def work(database: Database) -> str:
        if args.if_empty and not await metadef_catalog.is_empty(database):
            return "Metadata definitions are already loaded; nothing done (--if-empty)."
        report = await metadef_catalog.load(database, files, options)
        lines = [f"Loaded {len(files)} definition files from {path}:"]
        for label, names in (
            ("created", report.created),
            ("merged", report.merged),
            ("overwritten", report.overwritten),
            ("skipped (already in the database; see --merge)", report.skipped),
        ):
            if names:
                lines.append(f"  {label}: {', '.join(names)}")
        return "\n".join(lines)

    return _with_database(settings, work)


def run_metadef_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.command == "load_metadefs":
            message = _load(args, settings)
        elif args.command == "unload_metadefs":
            count = _with_database(settings, metadef_catalog.unload)
            message = f"Deleted {count} namespaces and every resource type."
        else:
            path: Path = args.path or settings.metadata_source_path
            written = _with_database(settings, lambda db: metadef_catalog.export(db, path))
            message = f"Wrote {len(written)} namespaces to {path}."
    except DefinitionError as exc:
        print(f"glimpse-manage db {args.command}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"glimpse-manage db {args.command}: {exc}", file=sys.stderr)
        return 1
    print(message)
    return 0
