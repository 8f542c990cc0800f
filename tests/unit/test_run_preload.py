"""`make run`'s preload (scripts/run.py): what the services share is imported before they are
forked, and never prometheus_client, which would choose how to count before the API and the
worker have chosen their metrics directories. Checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import ROOT, environment

CHECK = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("run", "scripts/run.py")
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)
forkable = run.preload(run.PRELOAD)
print(json.dumps([forkable, "prometheus_client" in sys.modules, "glimpse_api.deps" in sys.modules]))
"""


def test_preload_imports_the_shared_modules_but_not_prometheus_client(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=ROOT,
        env=environment(GLIMPSE_CONFIG=str(tmp_path / "absent.conf")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [True, False, True]
