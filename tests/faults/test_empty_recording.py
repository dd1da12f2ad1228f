"""A power cut before the first packet: the empty recording is removed at the next start.

``omgrab run`` records on a simulated device whose every stream is stalled from the start
(``--faults stall@0``), so no packet ever reaches a chunk; the process group is SIGKILLed. The
spool then holds a recording with nothing but its metadata. The restarted application's
start-up recovery removes it (saying why in its log) instead of rescanning it at every start;
a recording that holds packets next to it is merged as usual.
"""

from __future__ import annotations

import pathlib
import time

import pytest

from tests.faults import app_process

pytestmark = pytest.mark.faults


def _recordings(spool: pathlib.Path) -> list[pathlib.Path]:
    return [d for d in spool.iterdir() if d.is_dir() and not d.name.startswith(".")]


def test_recording_killed_before_its_first_packet_is_removed_at_the_next_start(
    tmp_path: pathlib.Path,
) -> None:
    data_dir = tmp_path / "data"
    spool = data_dir / "spool"
    app = app_process.start(data_dir, "--faults", "stall@0")
    try:
        app.wait_idle()
        app.press()
        app.wait_for("recording", lambda d: (d.get("recording") or {}).get("is_recording"), 60)
        deadline = time.monotonic() + 30
        while not any((d / "recording.json").exists() for d in _recordings(spool)):
            assert time.monotonic() < deadline, "no spool recording"
            time.sleep(0.05)
        time.sleep(1.0)  # the writer and its workers are up, every stream stalled
    finally:
        app.kill_group()
    (empty,) = _recordings(spool)
    assert not list(empty.rglob("*.mkv")), "a packet reached a chunk"
    held = sorted(p.relative_to(empty).as_posix() for p in empty.rglob("*") if p.is_file())
    restarted = app_process.start(data_dir)
    try:
        started_in = restarted.wait_idle()
    finally:
        assert restarted.terminate() == 0
    assert not empty.exists(), "the empty recording is still in the spool"
    assert not list((data_dir / "recordings").glob("*.mkv"))
    log = (data_dir / "app.log").read_text(errors="replace")
    assert f"removed the empty recording {empty}" in log
    assert "no chunk and no packet" in log
    # the start after that has nothing to recover and says nothing about it
    again = app_process.start(data_dir)
    try:
        again.wait_idle()
    finally:
        assert again.terminate() == 0
    assert log.count(str(empty)) == (data_dir / "app.log").read_text(errors="replace").count(
        str(empty)
    )
    print(f"FAULTS empty-recording held={held} removed at start-up (idle after {started_in:.1f} s)")
