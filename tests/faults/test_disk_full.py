"""Disk full under the real application: the recording stops cleanly, resumes once freed."""

from __future__ import annotations

import json
import os
import pathlib
import time

import pytest

from tests import tmpfs
from tests.faults import app_process

pytestmark = [pytest.mark.faults, pytest.mark.tmpfs]


def _merged(data_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted((data_dir / "recordings").glob("*.mkv"))


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_disk_full_while_recording_then_space_freed(tmp_path: pathlib.Path) -> None:
    with tmpfs.mounted_tmpfs(tmp_path, "128m") as mount:
        data_dir = mount / "data"
        data_dir.mkdir()
        filler = mount / "filler"
        stat = os.statvfs(mount)
        # leave ~42 MB: 32 MB are kept for merging, so the floor stops the recording within seconds
        with filler.open("wb") as fh:
            fh.truncate(0)
            os.posix_fallocate(fh.fileno(), 0, stat.f_bavail * stat.f_frsize - (42 << 20))
        app = app_process.start(data_dir)
        try:
            app.wait_idle()
            app.press()
            app.wait_recording(0.2)
            # the recording manager stops it before the disk is full and merges it
            app.wait_for(
                "stopped by the free-space floor",
                lambda d: not (d.get("recording") or {}).get("is_recording"),
                120,
            )
            _wait(lambda: len(_merged(data_dir)) == 1, 60, "first recording not merged")
            first = _merged(data_dir)[0]
            app_process.probe_valid(first)
            # the spool is cleaned up just after the merged file appears
            _wait(
                lambda: not any((data_dir / "spool").glob("*/*/*.mkv")),
                60,
                "spool not cleaned up after the merge",
            )
            # space freed: the next press records again
            filler.unlink()
            _wait(
                lambda: app.status() and app.status().get("state_machine_state") == "idle",
                60,
                "not idle after the disk-full stop",
            )
            app.press()
            app.wait_recording(1.0)
            app.press()
            _wait(lambda: len(_merged(data_dir)) == 2, 60, "second recording not merged")
        finally:
            code = app.terminate()
        assert code == 0
        for path in _merged(data_dir):
            app_process.probe_valid(path)
            doc = json.loads(path.with_suffix(".json").read_text())
            assert doc["streams"]["rgb"]["frames_written"] > 0
