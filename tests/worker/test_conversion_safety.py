"""image_conversion: hostile images (the CVE-2024-32498 family) are refused by the format
inspectors before qemu-img is ever started on them, and qemu-img runs under CPU, address-space
and wall-clock limits.

A `qemu-img` wrapper first on PATH records each invocation, with the limits it runs under, and
then executes the real qemu-img: its log is the proof of what ran.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import disk_images
from factories import assert_active_with, assert_refused, qemu_img, run_import

WRAPPER = """#!/bin/bash
# Records how it was started, then becomes the real qemu-img (or hangs, when asked to).
echo "pid=$$ cpu=$(ulimit -t) as=$(ulimit -v) args=$*" >> {log}
if [ "$1" = "$QEMU_IMG_WRAPPER_HANG" ]; then exec sleep 600; fi
exec {real} "$@"
"""


@dataclass(frozen=True)
class Invocation:
    pid: int
    cpu_seconds: str
    address_space_kib: str
    args: list[str]


@dataclass(frozen=True)
class QemuImgLog:
    path: Path

    def invocations(self) -> list[Invocation]:
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text().splitlines():
            pid, cpu, space, args = line.split(" ", 3)
            found.append(
                Invocation(
                    int(pid.removeprefix("pid=")),
                    cpu.removeprefix("cpu="),
                    space.removeprefix("as="),
                    args.removeprefix("args=").split(),
                )
            )
        return found


@pytest.fixture
def qemu_img_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> QemuImgLog:
    """Puts the recording wrapper first on PATH for this test."""
    real = shutil.which("qemu-img")
    assert real is not None
    bin_dir = tmp_path / "wrapper-bin"
    bin_dir.mkdir()
    log = QemuImgLog(tmp_path / "qemu-img.log")
    wrapper = bin_dir / "qemu-img"
    wrapper.write_text(WRAPPER.format(log=log.path, real=real))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def qcow2_backed_by_a_host_file(directory: Path) -> Path:
    """A qcow2 whose backing file is a file of the host (/etc/passwd) read as raw."""
    path = directory / "host-backed.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", "-u", str(path), "1M")
    return path


def gpt_with_an_extra_partition(directory: Path) -> Path:
    return disk_images.gpt(directory, extra_partition=True)


# builder, declared disk_format, what the refusal names
HOSTILE: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    **disk_images.HOSTILE,
    "qcow2-backing-host-file": (qcow2_backed_by_a_host_file, "qcow2", "backing_file"),
    "qcow2-hiding-an-iso": (disk_images.qcow2_hiding_an_iso, "qcow2", "Multiple formats"),
    "gpt-invalid-mbr": (gpt_with_an_extra_partition, "raw", "mbr"),
}


@pytest.mark.parametrize("sample", HOSTILE.keys())
async def test_hostile_images_are_refused_before_qemu_img_runs(
    make_settings: Any, client_for: Any, tmp_path: Path, qemu_img_log: QemuImgLog, sample: str
) -> None:
    build, disk_format, reason = HOSTILE[sample]
    samples = tmp_path / "samples"
    samples.mkdir()
    data = build(samples).read_bytes()
    qemu_img_log.path.unlink(missing_ok=True)  # the builders may use qemu-img themselves
    imported = await run_import(
        make_settings, client_for, data, ["image_conversion"], disk_format=disk_format
    )
    assert_refused(imported, "Image conversion refused: ")
    assert reason in imported.task["message"]
    assert qemu_img_log.invocations() == []


async def test_a_safe_image_is_converted_under_the_configured_limits(
    make_settings: Any, client_for: Any, tmp_path: Path, qemu_img_log: QemuImgLog
) -> None:
    source = disk_images.qcow2(tmp_path)
    expected = tmp_path / "expected.raw"
    qemu_img("convert", "-f", "qcow2", "-O", "raw", str(source), str(expected))
    qemu_img_log.path.unlink(missing_ok=True)
    imported = await run_import(
        make_settings,
        client_for,
        source.read_bytes(),
        ["image_conversion"],
        disk_format="qcow2",
        image_conversion={
            "convert_cpu_limit": "77",
            "convert_memory_limit": "1536",
            "convert_time_limit": "600",
        },
    )
    assert_active_with(imported, expected.read_bytes())
    ran = [(i.args[0], i.cpu_seconds, i.address_space_kib) for i in qemu_img_log.invocations()]
    assert ran == [
        ("info", "30", str(1024 * 1024)),  # Glance's limits for info
        ("convert", "77", str(1536 * 1024)),
        ("info", "30", str(1024 * 1024)),  # the output, before it replaces the staged file
    ]


async def test_a_convert_past_its_time_limit_is_killed_and_fails_the_task(
    make_settings: Any,
    client_for: Any,
    tmp_path: Path,
    qemu_img_log: QemuImgLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = disk_images.qcow2(tmp_path)
    qemu_img_log.path.unlink(missing_ok=True)
    monkeypatch.setenv("QEMU_IMG_WRAPPER_HANG", "convert")  # a convert that never ends
    imported = await run_import(
        make_settings,
        client_for,
        source.read_bytes(),
        ["image_conversion"],
        disk_format="qcow2",
        image_conversion={"convert_time_limit": "1"},
    )
    assert_refused(imported, "Image conversion failed: qemu-img convert did not finish within 1 s")
    [_info, convert] = qemu_img_log.invocations()
    assert convert.args[0] == "convert"
    assert not running(convert.pid)  # killed and reaped
    assert leftovers(tmp_path, imported.image_id) == []  # no partial output


def running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def leftovers(root: Path, image_id: str) -> list[Path]:
    """Files named after the image other than its staged data (a conversion's output)."""
    return list(root.glob(f"**/{image_id}.*"))
