"""Published 0.1.2 import path ``omgrab.cameras.usb_camera``: 0.1.2's ``USBCamera``.

A thin subclass of this package's V4L2 camera (:class:`omgrab.cameras.usb.USBCamera`, which
takes the device first) with 0.1.2's constructor: a camera named by ``device_path``
(``'/dev/video2'``) or by ``usb_port_path`` (``'3-2'``), the latter resolved through sysfs
(:mod:`omgrab.cameras.usb_port`) each time the camera is opened (``setup()``), so it follows
the camera to whatever ``/dev/videoN`` it gets after a replug. Reading, buffering, threads and
errors are the base class's.
"""

from __future__ import annotations

from typing import Any

from omgrab.cameras import base, usb, usb_port


class USBCamera(usb.USBCamera):
    """A USB camera by device path or USB port path (omgrab 0.1.2 constructor).

    Args:
        config: Frame rate and size.
        device_path: Video device path, e.g. ``'/dev/video2'``.
        usb_port_path: USB port path, e.g. ``'3-2'``; resolved at each open.
        **options: The base camera's keyword options (clock, fourcc, buffer_size, ...).

    Raises:
        ValueError: Neither ``device_path`` nor ``usb_port_path`` given.
    """

    def __init__(
        self,
        config: base.CameraConfig,
        device_path: str = "",
        usb_port_path: str = "",
        **options: Any,
    ) -> None:
        if not device_path and not usb_port_path:
            raise ValueError("Either device_path or usb_port_path is required")
        super().__init__(device_path or f"usb-port:{usb_port_path}", config, **options)
        self._usb_port_path = usb_port_path

    def _open(self) -> None:
        if self._usb_port_path:
            resolved = usb_port.find_video_device_by_usb_port(self._usb_port_path)
            if resolved is None:
                raise base.FrameUnavailableError(
                    f"No video device found for USB port {self._usb_port_path}"
                )
            self._device = resolved
        super()._open()
