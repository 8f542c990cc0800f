"""Several processes writing one SQLite file at once (API, worker and scrubber share it)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from glimpse.db import migrate
from glimpse.db.engine import Database
from support import environment

WRITER = """
import asyncio, sys
from glimpse.config import load_settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.domain.policy import PolicyEngine
from glimpse.services.images import ImageService
from glimpse.stores.registry import StoreRegistry

async def main(url, worker, count):
    settings = load_settings(None, database={"connection": url})
    database = Database.from_settings(settings)
    service = ImageService(settings, database, StoreRegistry.from_settings(settings))
    ctx = RequestContext(project_id="p", user_id="u", roles=frozenset({"admin"}))
    ctx = PolicyEngine().bind(ctx)
    for index in range(count):
        image = await service.create(ctx, {"name": f"w{worker}-{index}", "tags": ["t"]})
        await service.add_tag(ctx, image.image.id, f"tag-{index}")
    await database.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def test_concurrent_writer_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"

    async def prepare() -> None:
        database = Database.from_url(url)
        await migrate.upgrade(database)
        await database.dispose()

    asyncio.run(prepare())
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(worker), "40"],
            env=environment(),
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(4)
    ]
    errors = []
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0:
            errors.append(stderr)
    assert errors == []

    async def count() -> tuple[int, int]:
        database = Database.from_url(url)
        async with database.read() as session:
            images = (await session.execute(sa.text("SELECT count(*) FROM images"))).scalar_one()
            tags = (await session.execute(sa.text("SELECT count(*) FROM image_tags"))).scalar_one()
        await database.dispose()
        return images, tags

    assert asyncio.run(count()) == (160, 320)
