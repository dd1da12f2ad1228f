"""The device application end to end: demo job, dashboard over real HTTP, page in Chromium."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import threading
import time

import httpx
import orjson
import pytest

from omgrab.app import config as config_mod
from omgrab.app import demo, device_app


def small_config(tmp_path: pathlib.Path, **overrides) -> config_mod.AppConfig:
    config = config_mod.AppConfig(
        data_dir=tmp_path / "data",
        device_id="test-rig",
        rgb_size=(320, 200),
        depth_size=(160, 100),
        chunk_length_s=0.5,
        rgb_preset="ultrafast",
        rgb_bitrate=500_000,
        network_check_host="localhost",
        network_check_port=9,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def ffprobe_streams(path: pathlib.Path) -> list[dict]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)["streams"]


def test_demo_records_merges_and_persists_perception_output(tmp_path) -> None:
    report = demo.run_demo(small_config(tmp_path), seconds=1.5)
    assert [s.name for s in report.streams] == ["rgb", "depth", "imu"]
    assert [s["codec_name"] for s in ffprobe_streams(report.recording)] == ["h264", "ffv1", "ass"]
    rgb = report.streams[0]
    assert rgb.packets >= 25 and rgb.dropped == 0
    assert report.chunks >= 3 * 3  # three streams, at least three 0.5 s chunks each
    assert report.detections > 0 and report.frames > 0
    assert report.gimbal_lines > 0 and report.health_lines >= 1
    assert report.output_errors == 0
    assert report.final_state == "idle"
    health = [orjson.loads(line) for line in (report.output_session / "health.jsonl").open("rb")]
    assert health[-1]["device_id"] == "test-rig"
    status = json.loads(report.status_file.read_text())
    assert status["device_id"] == "test-rig"


def test_app_start_recovers_a_crashed_recording(tmp_path) -> None:
    config = small_config(tmp_path, perception=False)
    first = device_app.DeviceApp(config)
    first.start()
    assert first.recorder.start_recording()
    recording_id = first.recorder.active_recording_id
    session = first.recorder.active_session
    assert session is not None
    partial = config.recordings_dir / f"{recording_id}.mkv.partial"
    state_file = session.recording_dir / "live_merge.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until a first batch of chunks is in the growing file
        if state_file.exists():
            state = json.loads(state_file.read_text())
            if state["size"] > state["header_size"]:
                break
        threading.Event().wait(0.05)
    else:
        raise AssertionError("the incremental merge appended nothing in 30 s")
    # Simulate a crash: the spool and the growing merged file are left as a killed process
    # leaves them (the spool first: the growing file is then at least as long as its state).
    spool_copy = tmp_path / "crashed"
    shutil.copytree(session.recording_dir, spool_copy)
    partial_copy = tmp_path / "crashed.mkv.partial"
    shutil.copyfile(partial, partial_copy)
    first.stop()
    for path in (config.recordings_dir).glob(f"{recording_id}.*"):
        path.unlink()
    shutil.rmtree(config.spool_dir / recording_id, ignore_errors=True)
    shutil.copytree(spool_copy, config.spool_dir / recording_id)
    shutil.copyfile(partial_copy, partial)
    (config.spool_dir / recording_id / "COMPLETE").unlink(missing_ok=True)

    second = device_app.DeviceApp(config)
    second.start()
    try:
        assert [p.name for p in second.recovered] == [f"{recording_id}.mkv"]
        manifest = json.loads((config.recordings_dir / f"{recording_id}.json").read_text())
        assert manifest["recovered"] is True
    finally:
        second.stop()


@pytest.fixture
def running_app(tmp_path):
    app = device_app.DeviceApp(small_config(tmp_path, dashboard_port=0))
    app.start()
    yield app
    app.stop()


def test_dashboard_serves_status_button_preview_and_detections(running_app) -> None:
    url = running_app.dashboard_url
    assert url is not None
    with httpx.Client(base_url=url, timeout=10, headers={"X-Omgrab-Request": "1"}) as client:
        status = client.get("/api/status").json()
        assert status["state"] == "idle"
        assert status["device"]["device_id"] == "test-rig"
        assert client.post("/api/button/bogus").status_code == 400
        pressed = client.post("/api/button/short").json()
        assert pressed["state"] == "recording"
        preview = client.get("/api/preview.jpg")
        assert preview.status_code == 200 and preview.content[:2] == b"\xff\xd8"
        with client.stream("GET", "/api/detections") as stream:
            lines = stream.iter_lines()
            assert json.loads(next(lines)) == {"hello": "omgrab detections"}
            report = json.loads(next(lines))
        assert set(report["detections"][0]) >= {"centerX", "centerY", "classNum", "label"}
        assert client.post("/api/button/short").json()["state"] == "idle"
        assert running_app.wait_for_recordings(1, 30)
        recordings = client.get("/api/recordings").json()
        assert recordings[0]["recording_id"] == running_app.completed[0].stem
