"""Capture devices: the protocol on the simulated, USB and fake devices; optional depthai."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import cv2
import numpy as np
import orjson
import pytest

from omgrab import cameras, devices, sensors
from omgrab.devices import base as device_base
from omgrab.devices import capture_device, usb
from omgrab.testing import fake_device
from tests import fixtures_capture

SMALL = fixtures_capture.SMALL


def test_simulated_device_implements_protocol(manual_clock) -> None:
    device = devices.SimulatedCaptureDevice(clock=manual_clock)
    assert isinstance(device, devices.CaptureDevice)
    assert device.label == "sim-0"
    assert device.device_type == devices.DeviceType.SIMULATED
    assert set(device.cameras) == {"rgb", "depth"}
    assert set(device.sensors) == {"imu"}
    assert device.cameras["rgb"].config == cameras.CameraConfig(25, 1280, 800)
    assert device.cameras["depth"].config == cameras.CameraConfig(25, 640, 400)
    assert device.connected  # hardware present before open
    assert not device.ready and device.preview() is None
    with device as opened:
        assert opened is device
        assert device.ready and device.wait_until_ready(0.0)
        assert all(c.is_open for c in device.cameras.values())
        assert device.sensors["imu"].is_open
        rgb, rgb_ts = device.cameras["rgb"].get_next_frame(timeout_s=1.0)
        depth, depth_ts = device.cameras["depth"].get_next_frame(timeout_s=1.0)
        payload, imu_ts = device.sensors["imu"].get_next_item(timeout_s=1.0)
        assert rgb.shape == (800, 1280, 3) and rgb.dtype == np.uint8
        assert depth.shape == (400, 640) and depth.dtype == np.uint16
        assert len(orjson.loads(payload)["readings"]) == 10
        assert rgb_ts <= depth_ts <= imu_ts
        rgb_camera: Any = device.cameras["rgb"]
        imu: Any = device.sensors["imu"]
        assert (rgb_camera.name, rgb_camera.frames_delivered, imu.items_delivered) == ("rgb", 1, 1)
        assert rgb_camera.latest[0] is rgb and imu.latest == (payload, imu_ts)
    assert not device.ready
    assert not any(c.is_open for c in device.cameras.values())
    assert not device.sensors["imu"].is_open


def test_simulated_device_optional_streams(manual_clock) -> None:
    device = devices.SimulatedCaptureDevice(
        rgb=SMALL, depth=None, imu_rate_hz=None, clock=manual_clock
    )
    assert set(device.cameras) == {"rgb"} and device.sensors == {}
    assert device.stream_names == ["rgb"]


def test_simulated_device_ready_delay(manual_clock) -> None:
    device = devices.SimulatedCaptureDevice(
        rgb=SMALL, depth=None, imu_rate_hz=None, clock=manual_clock, ready_delay_s=2.0
    )
    with device:
        assert device.connected and not device.ready
        assert not device.wait_until_ready(0.0)
        manual_clock.source.advance(2.0)
        assert device.wait_until_ready(0.0)


def test_simulated_device_wait_until_ready_wakes_on_reconnect() -> None:
    device = devices.SimulatedCaptureDevice(rgb=SMALL, depth=None, imu_rate_hz=None)
    with device:
        device.inject_disconnect()
        timer = threading.Timer(0.05, device.reconnect)
        timer.start()
        assert device.wait_until_ready(5.0)
        timer.join()


def test_simulated_device_preview_does_not_consume_frames(manual_clock) -> None:
    device = devices.SimulatedCaptureDevice(
        rgb=SMALL, depth=None, imu_rate_hz=None, clock=manual_clock
    )
    with device:
        first = device.preview()
        assert first is not None and first[0].shape == (120, 160, 3)
        assert cameras.read_frame_counter(first[0]) == 0
        image, _ = device.cameras["rgb"].get_next_frame(timeout_s=1.0)
        assert cameras.read_frame_counter(image) == 0  # preview took nothing
        latest = device.preview()
        assert latest is not None and latest[0] is image  # the frame just read is fresh
        manual_clock.source.advance(1.0)
        stale = device.preview()
        assert stale is not None and cameras.read_frame_counter(stale[0]) == 1


def test_sim_device_fixture_runs_in_real_time(sim_device) -> None:
    with sim_device:
        assert sim_device.wait_until_ready(1.0)
        started = time.monotonic()
        frames = [sim_device.cameras["rgb"].get_next_frame(timeout_s=1.0) for _ in range(3)]
        elapsed = time.monotonic() - started
        depth, _ = sim_device.cameras["depth"].get_next_frame(timeout_s=1.0)
        payload, _ = sim_device.sensors["imu"].get_next_item(timeout_s=1.0)
    assert [cameras.read_frame_counter(f) for f, _ in frames] == [0, 1, 2]
    # Paced at 25 fps: the third frame's slot is two periods after the first read. A lower
    # bound on real time holds on a busy machine too (a late frame may shorten one gap).
    assert elapsed >= 2 / 25 - 0.001
    assert frames[0][1] < frames[1][1] < frames[2][1]
    assert depth.shape == (120, 160)
    assert orjson.loads(payload)["seq"] == 0


def test_usb_capture_device_over_video_files(tmp_path, small_video_file) -> None:
    second = fixtures_capture.write_video(tmp_path / "second.mkv", 10)
    cams = {
        "rgb": cameras.USBCamera(
            str(small_video_file), SMALL, api_preference=cv2.CAP_FFMPEG, buffer_size=32
        ),
        "side": cameras.USBCamera(str(second), SMALL, api_preference=cv2.CAP_FFMPEG),
    }
    device = devices.USBCaptureDevice("usb-rig", cams)
    assert isinstance(device, devices.CaptureDevice)
    assert device.device_type == devices.DeviceType.USB
    assert device.sensors == {}
    assert device.connected  # device nodes (here: files) exist
    assert not device.ready
    with device:
        first, _ = device.cameras["rgb"].get_next_frame(timeout_s=5.0)
        assert cameras.read_frame_counter(first) == 0
        preview = device.preview()
        assert preview is not None and preview[0].shape == (120, 160, 3)
        # Both files end: the cameras disconnect, and so does the device.
        assert cams["rgb"].wait_until_disconnected(5.0)
        assert cams["side"].wait_until_disconnected(5.0)
        assert not device.connected and not device.ready
        assert device.preview() is None
    missing = devices.USBCaptureDevice(
        "gone", {"rgb": cameras.USBCamera(str(tmp_path / "video9"), SMALL)}
    )
    assert not missing.connected
    with pytest.raises(ValueError, match="at least one camera"):
        devices.USBCaptureDevice("empty", {})


def test_usb_capture_device_open_failure_closes_opened_cameras(tmp_path, small_video_file):
    good = cameras.USBCamera(str(small_video_file), SMALL, api_preference=cv2.CAP_FFMPEG)
    bad = cameras.USBCamera(str(tmp_path / "nope.mkv"), SMALL, api_preference=cv2.CAP_FFMPEG)
    device = devices.USBCaptureDevice("usb", {"a": good, "b": bad})
    with pytest.raises(cameras.FrameUnavailableError, match="cannot open"):
        device.open()
    assert not good.is_open and not device.ready


def test_usb_device_present_for_index() -> None:
    assert usb.device_present(9999) is False


def test_fake_device_is_scriptable() -> None:
    device = fake_device.FakeCaptureDevice()
    assert isinstance(device, devices.CaptureDevice)
    # omgrab 0.1.2 semantics: ready is the flag, reported whether open or not.
    assert device.label == "fake" and device.device_type is None
    assert device.connected and device.ready and device.wait_until_ready()
    with device:
        assert device.is_open and device.opened and device.open_count == 1
        image, _ = device.cameras["rgb"].get_next_frame(timeout_s=1.0)
        assert image.shape == (48, 64, 3)
        payload, _ = device.sensors["imu"].get_next_item(timeout_s=1.0)
        assert orjson.loads(payload)["readings"]
        with pytest.raises(capture_device.PreviewUnavailableError):
            device.preview()
        with pytest.raises(RuntimeError, match="already open"):
            device.__enter__()
        device.set_connected(False)
        assert not device.connected
        device.set_connected(True)
        device.set_ready(False)
        started = time.monotonic()
        assert device.wait_until_ready(5.0) is False
        assert time.monotonic() - started < 1.0  # returns the flag, does not wait
        device.set_ready(True)
        assert device.wait_until_ready(timeout=None)
    assert device.close_count == 1 and not device.cameras["rgb"].is_open
    assert device.__exit__(ValueError, ValueError("x"), None) is False


def test_fake_device_with_given_streams_and_open_error() -> None:
    cam = cameras.SyntheticCamera(SMALL, pace=False)
    imu = sensors.SyntheticImu(pace=False)
    device = fake_device.FakeCaptureDevice(
        "mine", {"front": cam}, {"imu": imu}, device_type=devices.DeviceType.USB
    )
    assert device.label == "mine" and device.device_type == devices.DeviceType.USB
    frame = (np.zeros((2, 2, 3), np.uint8), cameras.SyntheticCamera(SMALL).clock.now())
    device.preview_frame = frame
    assert device.preview() is frame
    failing = fake_device.FakeCaptureDevice(open_error=OSError("usb gone"))
    with pytest.raises(OSError, match="usb gone"):
        failing.open()
    assert failing.open_count == 0 and not failing.is_open


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_devices_import_without_depthai() -> None:
    # sys.modules[name] = None makes any import of depthai fail, as if it were not installed.
    result = _run(
        "import sys; sys.modules['depthai'] = None\n"
        "import omgrab.devices as d\n"
        "assert d.SimulatedCaptureDevice and d.OakDCaptureDevice\n"
        "from omgrab.cameras import CameraConfig as C\n"
        "try:\n"
        "    d.OakDCaptureDevice(C(25, 64, 48), C(25, 64, 48))\n"
        "except ImportError as e:\n"
        "    print('IMPORT-ERROR', e)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "IMPORT-ERROR" in result.stdout and "omgrab[oakd]" in result.stdout


def test_importing_devices_does_not_import_depthai() -> None:
    result = _run("import sys, omgrab.devices; print('depthai' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_fake_device_exported_from_testing() -> None:
    import omgrab.testing

    assert omgrab.testing.FakeCaptureDevice is fake_device.FakeCaptureDevice


class _PolledDevice(device_base.StreamDevice[cameras.Camera, sensors.Sensor]):
    """The least a backend adds to ``StreamDevice``: ready after ``ready_after`` polls."""

    def __init__(self, ready_after: int | None) -> None:
        super().__init__("polled", {"rgb": cameras.SyntheticCamera(SMALL, pace=False)})
        self.ready_after = ready_after
        self.polls = 0

    device_type = devices.DeviceType.SIMULATED
    connected = True

    @property
    def ready(self) -> bool:
        self.polls += 1
        return self._streams_open and self.ready_after is not None and self.polls > self.ready_after

    def preview(self) -> cameras.Frame | None:
        return None


def test_stream_device_base_gives_label_lifecycle_and_polling_wait() -> None:
    device = _PolledDevice(ready_after=3)
    assert isinstance(device, devices.CaptureDevice)
    assert device.label == "polled" and device.stream_names == ["rgb"]
    assert not device.wait_until_ready(0.0)  # closed: one poll, no wait
    device.polls = 0
    with device:
        assert device.cameras["rgb"].is_open
        assert device.wait_until_ready(30.0)  # polls until ready turns True
        assert device.polls == 4
        device.open()  # idempotent
    assert not device.cameras["rgb"].is_open
    never = _PolledDevice(ready_after=None)
    with never:
        start = time.monotonic()
        assert not never.wait_until_ready(0.05)
        assert time.monotonic() - start >= 0.05  # kept polling until the timeout
