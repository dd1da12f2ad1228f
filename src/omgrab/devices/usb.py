"""A capture device made of one or more USB (V4L2) cameras."""

from __future__ import annotations

import os
import threading
import time

from omgrab.cameras import base as camera_base
from omgrab.cameras import usb
from omgrab.devices import base
from omgrab.sensors import base as sensor_base


def device_present(device: int | str) -> bool:
    """Return True when a camera's device node (or file) exists.

    Args:
        device: ``0`` (meaning ``/dev/video0``) or a path.
    """
    path = f"/dev/video{device}" if isinstance(device, int) else device
    return os.path.exists(path)


class USBCaptureDevice(base.StreamDevice[usb.USBCamera, sensor_base.Sensor]):
    """USB cameras grouped as one capture device.

    Before it is opened the device counts as connected when every camera's device node exists;
    once open, when every camera's reader is running. It is ready when open, connected and every
    camera has delivered at least one frame.

    Args:
        label: Device label.
        cameras: Cameras by stream name (the preview uses ``'rgb'``, else the first one).

    Raises:
        ValueError: When no cameras are given.
    """

    def __init__(self, label: str, cameras: dict[str, usb.USBCamera]) -> None:
        if not cameras:
            raise ValueError("USBCaptureDevice needs at least one camera")
        self._label = label
        self._cameras = dict(cameras)
        self._sensors = {}
        self._lock = threading.Lock()
        self._open = False

    @property
    def label(self) -> str:
        """Device label."""
        return self._label

    @property
    def device_type(self) -> base.DeviceType:
        """Always ``DeviceType.USB``."""
        return base.DeviceType.USB

    @property
    def connected(self) -> bool:
        """True when every camera is present (closed) or reading (open)."""
        with self._lock:
            is_open = self._open
        if is_open:
            return all(camera.connected for camera in self._cameras.values())
        return all(device_present(camera.device) for camera in self._cameras.values())

    @property
    def ready(self) -> bool:
        """True when open, connected and every camera has captured a frame."""
        with self._lock:
            if not self._open:
                return False
        return all(
            camera.connected and camera.frames_captured > 0 for camera in self._cameras.values()
        )

    def wait_until_ready(self, timeout: float) -> bool:
        """Poll ``ready`` for up to ``timeout`` seconds; return it."""
        end = time.monotonic() + timeout
        while not self.ready:
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True

    def preview(self) -> camera_base.Frame | None:
        """Return the newest frame of the ``'rgb'`` camera (or the first), or None."""
        camera = self._cameras.get("rgb") or next(iter(self._cameras.values()))
        return camera.latest_frame() if camera.connected else None

    def open(self) -> None:
        """Open every camera; on failure close the ones already opened and re-raise."""
        self._open_once()

    def close(self) -> None:
        """Close every camera (idempotent)."""
        self._close_once()
