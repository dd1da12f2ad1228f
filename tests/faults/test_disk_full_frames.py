"""Disk full while the perception loop logs frames and detections, under the real application.

The filesystem is filled to the last block during a recording: the recorder's free-space floor
stops the recording, whose merge then fails with ``ENOSPC`` (its spool is kept and
``status.json`` lists it under ``merge_retry``); frame logging fails with ``ENOSPC`` without
killing the application. Once space is freed the merge is retried while the application runs
(no restart) and the next recording logs frames and detections again.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import time
from typing import Any

import pytest

from omgrab.output import serialize
from tests import tmpfs
from tests.faults import app_process

pytestmark = [pytest.mark.faults, pytest.mark.tmpfs]


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _fill(path: pathlib.Path, mount: pathlib.Path) -> None:
    """Take every free block of ``mount`` (what the kernel reserves for nobody on tmpfs)."""
    with path.open("wb") as fh:
        chunk = b"\0" * (1 << 20)
        with contextlib.suppress(OSError):
            while True:
                fh.write(chunk)
                fh.flush()
        with contextlib.suppress(OSError):
            while True:
                os.write(fh.fileno(), b"\0" * 4096)
    assert os.statvfs(mount).f_bavail < 4, "filesystem not full"


def _retrying(doc: dict[str, Any]) -> int:
    """Merges ``status.json`` says wait for a retry."""
    return int((doc.get("merge_retry") or {}).get("pending") or 0)


def _frames(session: pathlib.Path) -> int:
    return len(list((session / "frames").glob("*.jpg")))


def test_disk_full_while_logging_frames_then_space_freed(tmp_path: pathlib.Path) -> None:
    with tmpfs.mounted_tmpfs(tmp_path, "128m") as mount:
        data_dir = mount / "data"
        app = app_process.start(data_dir)
        try:
            app.wait_idle()
            (session,) = list((data_dir / "output").iterdir())
            app.press()
            _wait(lambda: _frames(session) >= 3, 60, "no frames logged")
            _fill(mount / "filler", mount)
            app.wait_for(
                "stopped by the full disk",
                lambda d: not (d.get("recording") or {}).get("is_recording"),
                120,
            )
            stuck = _frames(session)
            app.wait_for("idle", lambda d: d.get("state_machine_state") == "idle", 60)
            assert app.proc.poll() is None  # still running on a full disk
            listed = app.wait_for("the failed merge listed", lambda d: _retrying(d) >= 1, 60)
            assert not list((data_dir / "recordings").glob("*.mkv"))
            held = app_process.held_packets(data_dir)
            assert held, "nothing held for the failed merge"
            freed_at = time.monotonic()
            (mount / "filler").unlink()
            app.wait_for("the merge retried", lambda d: _retrying(d) == 0, 180)
            retried_in = time.monotonic() - freed_at
            assert len(list((data_dir / "recordings").glob("*.mkv"))) == 1
            app.press()
            _wait(lambda: _frames(session) > stuck + 3, 60, "frame logging did not resume")
            app.wait_recording(1.0)
            app.press()
            app.wait_for(
                "stopped", lambda d: not (d.get("recording") or {}).get("is_recording"), 60
            )
        finally:
            code = app.terminate()
        assert code == 0
        merged = sorted((data_dir / "recordings").glob("*.mkv"))
        # the full-disk recording (merged by the retry, no restart) and the next one
        assert len(merged) == 2, merged
        assert not app_process.missing_packets(data_dir, held)  # every packet held then is merged
        for path in merged:
            app_process.probe_valid(path)
        entries = list(serialize.iter_jsonl(session / "detections.jsonl"))
        assert entries, "no detections logged"
        assert not any((data_dir / "spool").glob("*/*/*.mkv")), "spool left behind"
        print(
            f"FAULTS disk-full-frames retry: {listed['merge_retry']['pending']} merge listed "
            f"(space error {listed['merge_retry']['recordings'][0]['space_error']}), "
            f"{sum(map(len, held.values()))} packets held (spool + growing file); "
            f"merged {retried_in:.1f} s after space was freed; "
            f"frames={_frames(session)} detections={len(entries)}"
        )
