"""omgrab 0.1.2's USB names: ``cameras.usb_port``, ``cameras.usb_camera.USBCamera(config,
device_path, usb_port_path)`` and ``devices.usb_capture_device.USBCaptureDevice`` with its
preview, over a sysfs tree laid out like Linux's and a real video file read by OpenCV."""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import cv2
import pytest

from omgrab.cameras import CameraConfig, usb_camera, usb_port
from omgrab.devices import capture_device, usb_capture_device

SMALL = CameraConfig(25, 160, 120)


@pytest.fixture
def sysfs(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """``/sys/bus/usb/devices`` with a UVC camera on port 3-2 (capture node video2, meta 3)."""
    root = tmp_path / "sys-bus-usb-devices"
    for node in ("video3", "video2"):
        (root / "3-2:1.0" / "video4linux" / node).mkdir(parents=True)
    (root / "1-1.4:1.0").mkdir(parents=True)  # a device without a video node
    monkeypatch.setattr(usb_port, "SYSFS_USB_DEVICES", root)
    return root


def test_usb_port_finds_the_capture_node(sysfs: pathlib.Path) -> None:
    assert usb_port.find_video_device_by_usb_port("3-2") == "/dev/video2"
    assert usb_port.find_video_device_by_usb_port("1-1.4") is None
    assert usb_port.find_video_device_by_usb_port("3-3") is None
    with pytest.raises(ValueError, match="not a USB port path"):
        usb_port.find_video_device_by_usb_port("../etc")


def _opened(small_video_file: pathlib.Path, seen: list[Any]) -> Any:
    """A capture factory recording the device it was asked for and reading the video file."""

    def factory(device: Any, api: int) -> Any:
        seen.append(device)
        return cv2.VideoCapture(str(small_video_file), cv2.CAP_FFMPEG)

    return factory


def test_usb_camera_resolves_its_port_at_each_open(
    sysfs: pathlib.Path, small_video_file: pathlib.Path
) -> None:
    with pytest.raises(ValueError, match="device_path or usb_port_path"):
        usb_camera.USBCamera(SMALL)
    seen: list[Any] = []
    camera = usb_camera.USBCamera(
        SMALL, usb_port_path="3-2", capture_factory=_opened(small_video_file, seen), fourcc=None
    )
    camera.setup()
    frame, stamp = camera.get_next_frame(timeout_s=5.0)
    camera.close()
    assert frame.shape == (120, 160, 3) and stamp.tzinfo is not None
    # Replugged: the kernel gave it another number; the next open follows it.
    (sysfs / "3-2:1.0" / "video4linux" / "video2").rmdir()
    (sysfs / "3-2:1.0" / "video4linux" / "video3").rmdir()
    (sysfs / "3-2:1.0" / "video4linux" / "video7").mkdir()
    camera.setup()
    camera.close()
    assert seen == ["/dev/video2", "/dev/video7"]
    (sysfs / "3-2:1.0" / "video4linux" / "video7").rmdir()
    with pytest.raises(RuntimeError, match="No video device found for USB port 3-2"):
        camera.setup()


def test_usb_capture_device_preview(
    sysfs: pathlib.Path,
    small_video_file: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(
        usb_capture_device.usb_camera,
        "USBCamera",
        functools.partial(
            usb_camera.USBCamera, capture_factory=_opened(small_video_file, seen), fourcc=None
        ),
    )
    plain = usb_capture_device.USBCaptureDevice(SMALL, "3-2", "left_wrist")
    assert plain.label == "left_wrist" and plain.ready and plain.wait_until_ready()
    assert plain.device_type is None and not plain.connected  # /dev/video2 is not here
    assert isinstance(plain, capture_device.CaptureDevice)
    with pytest.raises(capture_device.PreviewUnavailableError), plain.preview():
        pass
    with pytest.raises(capture_device.PreviewUnavailableError):
        plain.get_preview_camera()
    device = usb_capture_device.USBCaptureDevice(SMALL, "3-2", "left_wrist", SMALL)
    reader = device.get_preview_camera()
    with device.preview() as previewing:
        assert previewing is device
        frame, _ = reader.get_next_frame(timeout_s=5.0)
        assert frame.shape == (120, 160, 3)
        with pytest.raises(RuntimeError, match="already active"), device.preview():
            pass
        with pytest.raises(RuntimeError, match="preview is active"):
            device.__enter__()
    assert seen == ["/dev/video2"]
    assert device.preview_errors == 0
    with device as recording:  # the recording opens the camera itself
        assert recording.get_camera() is device.cameras["rgb"]
