"""omgrab 0.1.2's ``OakDCaptureDevice(rgb_config, depth_config, ...)`` and its queue API, on this
package's depthai 3 backend, against the fake depthai producing frames in real time."""

from __future__ import annotations

import datetime
import queue
import time

import numpy as np
import pytest

from omgrab import devices
from omgrab.cameras import CameraConfig, oakd_camera
from omgrab.devices import capture_device, oakd_capture_device
from omgrab.sensors import queue_reader_sensor
from tests import fake_depthai as fake
from tests import fake_depthai_live

RGB = CameraConfig(fps=25, width=64, height=40)
DEPTH = CameraConfig(fps=25, width=32, height=20)


@pytest.fixture
def live_dai(monkeypatch: pytest.MonkeyPatch) -> object:
    fake.reset()
    monkeypatch.setattr(
        fake.Node.Output, "createOutputQueue", fake_depthai_live.create_output_queue
    )
    return fake


def test_published_constructor_and_accessors(live_dai: object) -> None:
    assert devices.OakDCaptureDevice is oakd_capture_device.OakDCaptureDevice
    device = devices.OakDCaptureDevice(RGB, DEPTH, 200, 100, dai_module=live_dai)
    assert device.label == "oakd" and device.device_type is None and not device.ready
    assert isinstance(device.rgb_queue, queue.Queue) and isinstance(device.depth_queue, queue.Queue)
    assert isinstance(device.get_rgb_camera(), oakd_camera.OakDRGBCamera)
    assert isinstance(device.get_depth_camera(), oakd_camera.OakDDepthCamera)
    assert device.imu_enabled and device.imu_queue is not None
    assert isinstance(device.get_imu_source(), queue_reader_sensor.QueueReaderSensor)
    assert isinstance(device, capture_device.CaptureDevice)
    assert isinstance(device, devices.CaptureDevice)  # this package's contract too
    no_imu = devices.OakDCaptureDevice(RGB, DEPTH, dai_module=live_dai)
    assert not no_imu.imu_enabled and no_imu.imu_queue is None
    with pytest.raises(RuntimeError, match="not enabled"):
        no_imu.get_imu_source()
    with pytest.raises(ValueError, match="max_queue_size"):
        devices.OakDCaptureDevice(RGB, DEPTH, 0, dai_module=live_dai)


def test_records_through_the_queues_after_the_warm_up(live_dai: object) -> None:
    device = devices.OakDCaptureDevice(
        RGB,
        DEPTH,
        imu_rate_hz=100,
        pipeline_config=oakd_capture_device.PipelineConfig(3),
        dai_module=live_dai,
    )
    with device:
        assert device.wait_until_ready(timeout=10.0)
        assert device.ready and device.connected
        with pytest.raises(RuntimeError, match="already in use"):
            device.__enter__()
        rgb, rgb_ts = device.get_rgb_camera().get_next_frame(timeout_s=2.0)
        depth, depth_ts = device.get_depth_camera().get_next_frame(timeout_s=2.0)
        payload, imu_ts = device.get_imu_source().get_next_item(timeout_s=2.0)
        pumps = list(device._pumps)
    assert rgb.shape == (40, 64, 3) and rgb.dtype == np.uint8
    assert depth.shape == (20, 32) and depth.dtype == np.uint16
    assert isinstance(payload, bytes) and payload.startswith(b"{")
    for stamp in (rgb_ts, depth_ts, imu_ts):
        assert stamp.tzinfo is not None
        assert abs(stamp - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(seconds=30)
    assert not device.ready and not any(p.thread.is_alive() for p in pumps)
    assert fake.Device.last is not None and fake.Device.last.closed
    assert device.pump_errors == 0


def test_a_full_queue_drops_the_newest_and_counts_it(live_dai: object) -> None:
    device = devices.OakDCaptureDevice(RGB, DEPTH, max_queue_size=2, dai_module=live_dai)
    with device:
        deadline = time.monotonic() + 10.0
        while device.frames_dropped["rgb"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert device.rgb_queue.qsize() == 2
    assert device.frames_dropped["rgb"] > 0


def test_a_failing_stream_is_counted_and_logged(
    live_dai: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Frames of the wrong dtype make the backend's conversion raise ValueError in the pump.
    monkeypatch.setattr(
        fake_depthai_live,
        "_colour_maker",
        lambda w, h: lambda s, i: fake.ImgFrame(np.zeros((h, w, 3), np.float32), s),
    )
    device = devices.OakDCaptureDevice(RGB, DEPTH, dai_module=live_dai)
    with device:
        deadline = time.monotonic() + 10.0
        while device.pump_errors == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not device.wait_until_ready(timeout=0.2)  # rgb never warms up
    assert device.pump_errors > 0
    assert "'rgb'" in (device.last_error or "") and "ValueError" in (device.last_error or "")
    assert "reading failed" in caplog.text


def test_preview_runs_only_with_a_preview_config_and_not_while_recording(
    live_dai: object,
) -> None:
    plain = devices.OakDCaptureDevice(RGB, DEPTH, dai_module=live_dai)
    with (
        pytest.raises(capture_device.PreviewUnavailableError, match="not enabled"),
        plain.preview(),
    ):
        pass
    with pytest.raises(RuntimeError, match="not enabled"):
        plain.get_preview_camera()
    small = CameraConfig(fps=15, width=32, height=20)
    device = devices.OakDCaptureDevice(RGB, DEPTH, preview_config=small, dai_module=live_dai)
    with device.preview() as previewing:
        assert previewing is device
        frame, _ = device.get_preview_camera().get_next_frame(timeout_s=5.0)
        assert frame.shape == (20, 32, 3)
        with pytest.raises(RuntimeError, match="preview"):
            device.__enter__()
    with device:
        assert device.wait_until_ready(10.0)
