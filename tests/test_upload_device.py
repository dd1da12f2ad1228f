"""The device app uploads its recordings: ``[upload]`` in the rig file, moto on loopback.

The app runs a simulated rig from a TOML file; its recording is uploaded in the background and
the uploader's progress appears in ``status.json``. Retention runs on a real tmpfs.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import pathlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from omgrab import storage
from omgrab.app import rig_build, rig_config, upload_service
from omgrab.runtime import network_monitor
from omgrab.upload import config as upload_config
from omgrab.upload import uploader as uploader_mod
from tests import cli_process, s3_fixtures, upload_factory

MiB = 1024 * 1024
STARTED = datetime.datetime(2026, 11, 22, 2, 40, 11, tzinfo=datetime.UTC)
ENV = {"AWS_ACCESS_KEY_ID": s3_fixtures.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": s3_fixtures.SECRET_KEY}


def _wait(predicate: Callable[[], Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        threading.Event().wait(0.05)
    return False


def _status_upload(status_file: pathlib.Path) -> dict[str, Any]:
    try:
        doc = json.loads(status_file.read_text())
    except (OSError, ValueError):
        return {}
    return doc.get("upload") or {}


def test_run_uploads_its_recording_byte_identical_and_reports_progress(
    s3_server: s3_fixtures.MotoServer,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    s3_server.client().create_bucket(Bucket="rig-data")
    data = tmp_path / "data"
    (tmp_path / "rig.toml").write_text(
        f"""
[rig]
id = "rig-up"
data_dir = "{data}"
[recording]
chunk_length_s = 1
[device]
imu_rate_hz = 50
[device.rgb]
width = 160
height = 120
fps = 10
preset = "ultrafast"
[device.depth]
enabled = false
[network]
probe_host = "localhost"
probe_port = 9
[dashboard]
enabled = false
[upload]
bucket = "rig-data"
endpoint_url = "{s3_server.url}"
part_size = 5242880
only_when_idle = true
poll_interval_s = 0.2
retry_initial_s = 0.2
"""
    )
    rig = rig_config.load(tmp_path / "rig.toml", env={})
    app = rig_build.build_app(rig, perception=False)
    assert app.upload is not None
    status_file = data / "status.json"
    recordings = data / "recordings"
    app.start()
    try:
        assert app.recorder.start_recording()
        # A recording that appears while recording waits: the gate is "not recording".
        older, _ = upload_factory.make_recording(recordings, "rec-older", 3000, STARTED, seed=4)
        assert _wait(
            lambda: _status_upload(status_file).get("pause_reason") == "recording in progress",
            30,
        ), _status_upload(status_file)
        paused = _status_upload(status_file)
        assert paused["pending_recordings"] >= 1 and paused["pending_bytes"] >= 3000
        assert paused["uploaded_recordings"] == 0
        threading.Event().wait(1.5)
        app.recorder.stop_recording()
        assert app.wait_for_recordings(1, timeout=120), app.recorder.last_error
        assert _wait(lambda: _status_upload(status_file).get("uploaded_recordings") == 2, 60), (
            _status_upload(status_file)
        )
        shown = _status_upload(status_file)
    finally:
        with caplog.at_level(logging.INFO, logger="omgrab.app.upload_service"):
            app.stop()
    assert shown["pending_recordings"] == 0 and shown["pending_bytes"] == 0
    assert shown["last_error"] is None and shown["errors"] == 0
    assert shown["bytes_sent"] > 3000 and shown["rate_bytes_per_s"] > 0
    assert shown["eta_s"] == 0
    assert "upload thread stopped" in caplog.text
    assert "upload" in json.loads(status_file.read_text())  # the final status keeps it
    client = s3_server.client()
    mkv = app.completed[0]
    for local in (mkv, mkv.with_suffix(".json"), older, older.with_suffix(".json")):
        date = "2026-11-22" if local.stem == "rec-older" else None
        keys = [
            o["Key"]
            for o in client.list_objects_v2(Bucket="rig-data")["Contents"]
            if o["Key"].endswith(f"/{local.stem}/{local.name}")
        ]
        assert len(keys) == 1, keys
        assert keys[0].startswith("rig-up/" + (date or ""))
        body = client.get_object(Bucket="rig-data", Key=keys[0])["Body"].read()
        assert body == local.read_bytes()


def test_missing_credentials_fail_before_anything_starts(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    rig = rig_config.from_dict(
        {"rig": {"data_dir": str(tmp_path / "d")}, "upload": {"bucket": "rig-data"}}, env={}
    )
    with pytest.raises(upload_config.UploadConfigError, match="no S3 credentials"):
        rig_build.build_app(rig, perception=False)


@contextlib.contextmanager
def _tmpfs(path: pathlib.Path, size: str) -> Iterator[pathlib.Path]:
    path.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_retention_deletes_only_remotely_verified_uploads_oldest_first_until_space_is_back(
    s3_server: s3_fixtures.MotoServer, tmp_path: pathlib.Path
) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="retain")
    with _tmpfs(tmp_path / "fs", "4m") as fs:
        recordings = fs / "recordings"
        made = [
            upload_factory.make_recording(
                recordings, f"rec-{i}", 3 * MiB // 4, STARTED + datetime.timedelta(hours=i), seed=i
            )[0]
            for i in range(4)
        ]
        config = upload_config.UploadConfig.from_mapping(
            {
                "bucket": "retain",
                "endpoint_url": s3_server.url,
                "device_id": "rig-7",
                "state_dir": str(tmp_path / "state"),
            }
        )
        up = uploader_mod.Uploader(config, recordings, environ=ENV)
        assert up.run_once()["uploaded_recordings"] == 4
        fresh, _ = upload_factory.make_recording(
            recordings, "rec-fresh", MiB // 2, STARTED + datetime.timedelta(hours=9), seed=9
        )
        # rec-0's remote copy no longer matches: it must survive.
        client.put_object(Bucket="retain", Key="rig-7/2026-11-22/rec-0/rec-0.mkv", Body=b"x")
        thresholds = storage.StorageThresholds(
            reduce_below=0.40, detection_only_below=0.10, recorder_floor=0.05
        )
        monitor = storage.StorageMonitor(fs, thresholds=thresholds, min_interval_s=0)
        assert monitor.refresh().free_fraction < 0.40
        service = upload_service.UploadService(up, monitor)
        assert service.reclaim() == 2
        assert monitor.refresh().free_fraction >= 0.40
        # rec-1 and rec-2 went (oldest verified first); then space was back: rec-3 stays.
        assert [p.name for p in made if p.exists()] == ["rec-0.mkv", "rec-3.mkv"]
        assert made[0].with_suffix(".json").exists()
        assert fresh.exists() and fresh.with_suffix(".json").exists()  # never uploaded
        assert service.progress()["retention_deleted"] == 2
        # Space is back: nothing more is deleted, not even a verified upload.
        assert up.run_once()["uploaded_recordings"] == 3
        made[0].unlink()  # (so that the oldest candidate verifies)
        made[0].with_suffix(".json").unlink()
        assert service.reclaim() == 0
        assert made[3].exists() and fresh.exists()


def test_wifi_gate_needs_a_network_and_a_wireless_interface(tmp_path: pathlib.Path) -> None:
    (tmp_path / "class" / "net" / "wlan0" / "wireless").mkdir(parents=True)
    (tmp_path / "class" / "net" / "eth0").mkdir(parents=True)
    assert upload_service.is_wireless("wlan0", str(tmp_path))
    assert not upload_service.is_wireless("eth0", str(tmp_path))
    assert not upload_service.is_wireless(None, str(tmp_path))
    monitor = network_monitor.NetworkMonitor(network_monitor.Config())
    assert monitor.snapshot.status is network_monitor.Status.OFFLINE
    assert not upload_service.on_wifi(monitor, str(tmp_path))


def test_cli_run_without_credentials_and_check_with_a_bad_upload_value_exit_2(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    rig = tmp_path / "rig.toml"
    rig.write_text(
        f'[rig]\ndata_dir = "{tmp_path / "d"}"\n[dashboard]\nenabled = false\n'
        '[upload]\nbucket = "rig-data"\n'
    )
    done = cli_process.omgrab("run", "--config", str(rig), cwd=tmp_path, timeout=120)
    cli_process.assert_user_error(done, "cannot set up the uploader", "no S3 credentials")
    rig.write_text('[upload]\nbucket = "rig-data"\npart_size = 1024\n')
    checked = cli_process.omgrab("config", "--check", str(rig), cwd=tmp_path)
    assert checked.returncode == 2 and "upload.part_size must be an integer" in checked.stderr
