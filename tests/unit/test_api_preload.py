"""What glimpse-api's master imports before it forks its workers (glimpse_api.main.PRELOAD):
everything uvicorn and FastAPI load as a worker starts, so that no worker imports its own copy.
Checked in a fresh interpreter: this one has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

from glimpse_api import supervisor

# The master's preload, then what a worker does before its first request: uvicorn's
# configuration loaded, its event loop made, a FastAPI application's lifespan run on it.
# Prints the modules imported after the preload.
WORKER_START = """
import asyncio, json, sys
from glimpse_api import supervisor
from glimpse_api.main import PRELOAD, server_options
from glimpse.config import Settings

supervisor.preload(PRELOAD)
before = set(sys.modules)

import uvicorn
from fastapi import FastAPI

app = FastAPI()
config = uvicorn.Config(app, **{**server_options(Settings()), "factory": False})
config.load()

async def lifespan():
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    async def receive():
        return next(messages)
    async def send(message):
        pass
    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
    runner.run(lifespan())
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_a_worker_imports_nothing_more_as_it_starts() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WORKER_START],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_a_module_that_is_not_installed_is_left_to_the_workers() -> None:
    supervisor.preload(("json", "glimpse_no_such_module"))
    assert "glimpse_no_such_module" not in sys.modules
