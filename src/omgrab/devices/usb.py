"""A capture device made of one or more USB (V4L2) cameras."""

from __future__ import annotations

import os

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
        super().__init__(label, cameras)

    @property
    def device_type(self) -> base.DeviceType:
        """Always ``DeviceType.USB``."""
        return base.DeviceType.USB

    @property
    def connected(self) -> bool:
        """True when every camera is present (closed) or reading (open)."""
        if self._streams_open:
            return all(camera.connected for camera in self._cameras.values())
        return all(device_present(camera.device) for camera in self._cameras.values())

    @property
    def ready(self) -> bool:
        """True when open, connected and every camera has captured a frame."""
        if not self._streams_open:
            return False
        return all(
            camera.connected and camera.frames_captured > 0 for camera in self._cameras.values()
        )

    def preview(self) -> camera_base.Frame | None:
        """Return the newest frame of the ``'rgb'`` camera (or the first), or None."""
        camera = self._cameras.get("rgb") or next(iter(self._cameras.values()))
        return camera.latest_frame() if camera.connected else None
