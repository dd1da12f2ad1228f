"""RecordingManager + RecordingSession end to end: simulated device, real writer, real merge."""

from __future__ import annotations

import json
import pathlib
import subprocess
import threading

import av
import pytest

from omgrab import devices, recording
from omgrab.cameras import base as camera_base
from omgrab.runtime import recording_manager

SIZE = camera_base.CameraConfig(25, 160, 120)


def make_manager(
    device: devices.SimulatedCaptureDevice,
    tmp_path: pathlib.Path,
    *,
    free_percent: float = 50.0,
    chunk_length_s: float = 0.5,
    **callbacks,
) -> recording_manager.RecordingManager:
    configs = {
        "rgb": recording.rgb_stream_config(
            width=SIZE.width, height=SIZE.height, fps=25, bitrate=300_000, preset="ultrafast"
        ),
        "depth": recording.depth_stream_config(width=SIZE.width, height=SIZE.height, fps=25),
    }
    return recording_manager.RecordingManager(
        [device],
        [device.cameras["rgb"], device.cameras["depth"]],
        ["rgb", "depth"],
        configs,
        tmp_path / "spool",
        tmp_path / "out",
        recording_manager.RecordingConfig(
            chunk_length_s=chunk_length_s,
            health_check_interval_s=0.1,
            stall_timeout_s=0.6,
            device_ready_timeout_s=2.0,
            reconnect_timeout_s=0.5,  # a cable that stays out (tests/test_runtime_reconnect.py)
        ),
        sensors=[device.sensors["imu"]],
        sensor_stream_names=["imu"],
        sensor_stream_configs={"imu": recording.imu_stream_config()},
        clock=device.clock,
        free_percent_fn=lambda _path: free_percent,
        **callbacks,
    )


def wait_for_frames(device: devices.SimulatedCaptureDevice, stream: str, count: int) -> None:
    camera = device.cameras[stream]
    done = threading.Event()
    for _ in range(400):
        if camera.frames_delivered >= count:  # type: ignore[attr-defined]
            return
        done.wait(0.02)
    raise AssertionError(f"{stream} delivered only {camera.frames_delivered} frames")  # type: ignore[attr-defined]


def probe(path: pathlib.Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def packet_counts(path: pathlib.Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with av.open(str(path)) as container:
        names = {s.index: s.metadata.get("title", str(s.index)) for s in container.streams}
        for packet in container.demux():
            if packet.size:
                counts[names[packet.stream.index]] = counts.get(names[packet.stream.index], 0) + 1
    return counts


def test_record_across_chunks_and_merge(sim_device, tmp_path) -> None:
    completed: list[pathlib.Path] = []
    got = threading.Event()
    manager = make_manager(
        sim_device, tmp_path, on_recording_complete=lambda p: (completed.append(p), got.set())
    )
    assert manager.start_recording()
    assert manager.is_recording and manager.active_recording_id is not None
    assert manager.recording_started_at is not None
    recording_id = manager.active_recording_id
    wait_for_frames(sim_device, "rgb", 40)  # 1.6 s: at least 3 chunks of 0.5 s
    session = manager.active_session
    assert session is not None
    backlog = session.writer_backlog_s()  # live, for the device status
    assert set(backlog) == {"rgb", "depth", "imu"}
    # at most the 1 s ring (25 items at 25 fps) plus the item in the encoder
    assert all(0.0 <= seconds <= 1.04 for seconds in backlog.values()), backlog
    manager.stop_recording()
    assert not manager.is_recording
    assert got.wait(30)
    path = completed[0]
    assert path == tmp_path / "out" / f"{recording_id}.mkv"
    info = probe(path)
    kinds = [s["codec_name"] for s in info["streams"]]
    assert kinds == ["h264", "ffv1", "ass"]
    manifest = json.loads(path.with_suffix(".json").read_text())
    streams = manifest["streams"]
    counts = packet_counts(path)
    assert streams["rgb"]["frames_written"] >= 40
    assert sum(counts.values()) == sum(s["frames_written"] for s in streams.values())
    assert len(streams["rgb"]["chunks"]) >= 3
    assert not (tmp_path / "spool" / recording_id).exists()  # cleaned after a verified merge
    manager.shutdown()


def test_pulled_cable_stops_recording_with_valid_file(sim_device, tmp_path) -> None:
    unhealthy = threading.Event()
    complete = threading.Event()
    manager = make_manager(
        sim_device,
        tmp_path,
        on_device_unhealthy=unhealthy.set,
        on_recording_complete=lambda _p: complete.set(),
    )
    assert manager.start_recording()
    wait_for_frames(sim_device, "rgb", 15)
    sim_device.inject_disconnect()
    assert unhealthy.wait(10)
    assert not manager.is_recording
    assert "disconnected" in (manager.last_error or "")
    assert complete.wait(30)
    path = manager.last_recording_path
    assert path is not None and probe(path)["format"]["nb_streams"] == 3
    assert packet_counts(path)["rgb"] >= 10
    manager.shutdown()


def test_stalled_stream_is_reported_and_others_keep_recording(sim_device, tmp_path) -> None:
    unhealthy = threading.Event()
    manager = make_manager(sim_device, tmp_path, on_device_unhealthy=unhealthy.set)
    assert manager.start_recording()
    wait_for_frames(sim_device, "rgb", 5)
    sim_device.inject_stall("depth")
    assert unhealthy.wait(10)
    assert manager.is_recording  # a stalled stream does not end the recording
    assert "depth" in (manager.last_error or "")
    before = sim_device.cameras["rgb"].frames_delivered  # type: ignore[attr-defined]
    wait_for_frames(sim_device, "rgb", before + 10)
    manager.stop_recording()
    assert manager.wait_for_merges(30)
    counts = packet_counts(manager.last_recording_path)
    assert counts["rgb"] > counts["depth"]
    manager.shutdown()


def test_start_refused_below_storage_floor(sim_device, tmp_path) -> None:
    manager = make_manager(sim_device, tmp_path, free_percent=1.0)
    assert manager.start_recording() is False
    assert "free" in (manager.last_error or "")
    assert not manager.is_recording
    manager.shutdown()


def test_disk_filling_up_stops_recording_cleanly(sim_device, tmp_path) -> None:
    errors = threading.Event()
    free = {"pct": 50.0}
    manager = make_manager(sim_device, tmp_path)
    manager._free_percent = lambda _p: free["pct"]  # the disk fills while recording
    manager.set_on_recording_error(errors.set)
    assert manager.start_recording()
    wait_for_frames(sim_device, "rgb", 10)
    free["pct"] = 1.0
    assert errors.wait(10)
    assert not manager.is_recording
    assert manager.wait_for_merges(30)
    assert manager.last_recording_path is not None and manager.last_recording_path.exists()
    manager.shutdown()


def test_shutdown_while_recording_merges(sim_device, tmp_path) -> None:
    manager = make_manager(sim_device, tmp_path)
    assert manager.start_recording()
    recording_id = manager.active_recording_id
    wait_for_frames(sim_device, "rgb", 10)
    manager.shutdown()
    assert (tmp_path / "out" / f"{recording_id}.mkv").exists()
    assert manager.start_recording() is False


def test_back_to_back_recordings_get_distinct_ids(sim_device, tmp_path) -> None:
    manager = make_manager(sim_device, tmp_path)
    ids = []
    for _ in range(2):
        assert manager.start_recording()
        ids.append(manager.active_recording_id)
        assert manager.start_recording() is False  # at most one active session
        wait_for_frames(sim_device, "rgb", 3)
        manager.stop_recording()
    assert manager.wait_for_merges(30)
    assert len(set(ids)) == 2
    assert all((tmp_path / "out" / f"{i}.mkv").exists() for i in ids)
    manager.shutdown()


def test_recording_config_validates() -> None:
    with pytest.raises(ValueError, match="chunk_length_s"):
        recording_manager.RecordingConfig(chunk_length_s=0)
    with pytest.raises(ValueError, match="stop_free_percent"):
        recording_manager.RecordingConfig(min_free_percent=1.0, stop_free_percent=2.0)


def test_encoder_crash_fires_error_once_and_keeps_written_data(sim_device, tmp_path) -> None:
    import os
    import signal

    errors: list[int] = []
    fired = threading.Event()
    manager = make_manager(sim_device, tmp_path)
    manager.set_on_recording_error(lambda: (errors.append(1), fired.set()))
    assert manager.start_recording()
    wait_for_frames(sim_device, "rgb", 20)
    session = manager.active_session
    assert session is not None
    pid = session.writer.worker_pid("depth")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # the depth encoder dies mid-recording
    assert fired.wait(15)
    assert not manager.is_recording
    assert manager.wait_for_merges(30)
    assert errors == [1]
    path = manager.last_recording_path
    assert path is not None
    assert packet_counts(path)["rgb"] >= 15  # what was written before the crash is kept
    manager.shutdown()


def _tmpfs_manager(device, root: pathlib.Path, **callbacks) -> recording_manager.RecordingManager:
    manager = make_manager(device, root, **callbacks)
    # Real free space this time, on the small filesystem.
    manager._free_percent = recording_manager.free_percent
    manager.config.merge_headroom_bytes = 512 * 1024
    return manager


def test_full_disk_refuses_start_on_a_real_tmpfs(sim_device, small_tmpfs) -> None:
    from tests.fixtures_output import fill_to_free_fraction

    manager = _tmpfs_manager(sim_device, small_tmpfs)
    fill_to_free_fraction(small_tmpfs, 0.04)  # below the 5 % floor
    assert manager.start_recording() is False
    assert "free" in (manager.last_error or "")
    (small_tmpfs / "ballast").unlink()
    assert manager.start_recording() is True
    manager.shutdown()


def test_filling_disk_stops_recording_while_the_merge_still_fits(sim_device, small_tmpfs) -> None:
    from tests.fixtures_output import fill_to_free_fraction

    stopped = threading.Event()
    manager = _tmpfs_manager(sim_device, small_tmpfs)
    manager.set_on_recording_error(stopped.set)
    assert manager.start_recording()
    recording_id = manager.active_recording_id
    wait_for_frames(sim_device, "rgb", 10)
    # Leave ~1.2 MiB: the recording (~0.5 MB/s here) soon needs more than that to merge.
    fill_to_free_fraction(small_tmpfs, 0.15)
    assert stopped.wait(20)
    assert not manager.is_recording
    assert "merg" in (manager.last_error or "")
    assert manager.wait_for_merges(30)
    merged = small_tmpfs / "out" / f"{recording_id}.mkv"
    assert merged.exists() and merged.with_suffix(".json").exists()
    assert probe(merged)["format"]["nb_streams"] == 3
    assert not (small_tmpfs / "spool" / recording_id).exists()
    manager.shutdown()
