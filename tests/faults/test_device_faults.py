"""Device faults under the real application (``omgrab run --faults`` on the simulated device).

Fault times count from the device open, which happens when a recording starts. Each scenario
ends in its documented state: a valid merged file (ffprobe and mkvmerge), the manifest's
``stop_reason`` and capture gaps, and ``status.json``.
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import pytest

from tests.faults import app_process

pytestmark = pytest.mark.faults


def _merged(data_dir: pathlib.Path, timeout: float = 90) -> tuple[pathlib.Path, dict[str, Any]]:
    """Wait for the single merged recording; return its MKV and its manifest."""
    recordings = data_dir / "recordings"
    deadline = time.monotonic() + timeout
    while True:
        found = sorted(recordings.glob("*.json"))
        mkvs = sorted(recordings.glob("*.mkv"))
        if found and mkvs:
            break
        assert time.monotonic() < deadline, f"no merged recording in {recordings}"
        time.sleep(0.1)
    assert len(mkvs) == 1 and len(found) == 1, (mkvs, found)
    app_process.probe_valid(mkvs[0])
    return mkvs[0], json.loads(found[0].read_text())


def _streams() -> tuple[str, ...]:
    """The simulated rig's streams."""
    return ("rgb", "depth", "imu")


def _not_recording(doc: dict[str, Any]) -> bool:
    return not (doc.get("recording") or {}).get("is_recording")


def _record(data_dir: pathlib.Path, faults: str, seconds: float) -> app_process.App:
    """Start the app with ``faults`` and record until ``seconds`` of recording time."""
    app = app_process.start(data_dir, "--faults", faults)
    app.wait_idle()
    app.press()
    app.wait_recording(seconds)
    return app


def test_brief_disconnect_is_a_gap_and_the_recording_continues(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    app = _record(data_dir, "disconnect@2+1.5", 5.0)
    try:
        assert app.status()["recording"]["is_recording"]  # survived the 1.5 s disconnect
        app.press()
        app.wait_for("stopped", _not_recording, 60)
        path, manifest = _merged(data_dir)
    finally:
        assert app.terminate() == 0
    assert manifest["stop_reason"] == "requested"
    for name in _streams():
        gaps = manifest["streams"][name]["capture_gaps"]
        causes = [gap["cause"] for gap in gaps["gap_list"]]
        assert "device_disconnected" in causes, (name, gaps)
        # the gap is the disconnect (1.5 s + reopen), not the rest of the recording
        assert 1000 <= gaps["gap_longest_ms"] <= 4000, (name, gaps)
        assert manifest["streams"][name]["frames_written"] > 0
    last = app_process.last_pts_by_stream(path)
    assert min(last.values()) >= 4000, last  # frames after the reconnect were recorded
    longest = [manifest["streams"][n]["capture_gaps"]["gap_longest_ms"] for n in _streams()]
    print(f"FAULTS brief-disconnect gaps_ms={longest}")


def test_disconnect_longer_than_reconnect_window_stops_the_recording(
    tmp_path: pathlib.Path,
) -> None:
    data_dir = tmp_path / "data"
    app = _record(data_dir, "disconnect@2", 0.5)
    try:
        down = app.wait_for("unhealthy", lambda d: d.get("device_healthy") is False, 30)
        assert "not connected" in (down.get("device_error") or ""), down
        # reconnect_timeout_s (5 s) later the recording stops by itself, back to idle
        stopped = app.wait_for("stopped by the fault", _not_recording, 60)
        path, manifest = _merged(data_dir)
        assert stopped["device_healthy"] is False, stopped
    finally:
        assert app.terminate() == 0
    assert manifest["stop_reason"] == "device_disconnected", manifest["stop_reason"]
    (interruption,) = manifest["interruptions"]
    assert interruption["reason"] == "device_disconnected" and not interruption["recovered"]
    last = app_process.last_pts_by_stream(path)
    # everything captured before the unplug (at 2 s) is in the file
    assert len(last) == 3 and min(last.values()) >= 1700, last
    print(f"FAULTS long-disconnect last_pts_ms={sorted(last.values())}")


@pytest.mark.parametrize("stalled", ["depth", "imu"])
def test_stalled_stream_reported_while_the_others_keep_recording(
    tmp_path: pathlib.Path, stalled: str
) -> None:
    data_dir = tmp_path / "data"
    app = _record(data_dir, f"stall:{stalled}@1", 0.5)
    try:
        down = app.wait_for("unhealthy", lambda d: d.get("device_healthy") is False, 30)
        assert f"stream {stalled} delivered nothing" in (down.get("device_error") or ""), down
        app.wait_recording(6.0)
        app.press()
        app.wait_for("stopped", _not_recording, 60)
        path, manifest = _merged(data_dir)
    finally:
        assert app.terminate() == 0
    assert manifest["stop_reason"] == "requested", manifest["stop_reason"]
    streams = manifest["streams"]
    last = {name: streams[name]["last_pts_ms"] for name in _streams()}
    assert last.pop(stalled) <= 1500, last  # nothing after the stall
    assert min(last.values()) >= 5500, last  # the others kept recording
    app_process.probe_valid(path)
    print(f"FAULTS stall-{stalled} last_pts_ms={last}")


def test_late_frames_keep_the_recording_going(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    app = _record(data_dir, "slow:rgb@1+2=0.2", 5.0)
    try:
        app.press()
        app.wait_for("stopped", _not_recording, 60)
        path, manifest = _merged(data_dir)
    finally:
        assert app.terminate() == 0
    assert manifest["stop_reason"] == "requested", manifest["stop_reason"]
    rgb = manifest["streams"]["rgb"]
    gaps = rgb["capture_gaps"]
    # 2 s at one frame per 0.2 s: the late frames are recorded, the skipped ones counted as ~10
    # short gaps (not one long one, not silently)
    assert gaps["gaps"] >= 5 and gaps["frames_missed"] >= 20, gaps
    assert gaps["gap_longest_ms"] <= 600, gaps
    assert rgb["frames_missed"] == gaps["frames_missed"], rgb
    print(f"FAULTS slow-rgb gaps={gaps['gaps']} missed={gaps['frames_missed']}")
    last = app_process.last_pts_by_stream(path)
    assert len(last) == 3 and min(last.values()) >= 4500, last  # every stream after the slowdown
