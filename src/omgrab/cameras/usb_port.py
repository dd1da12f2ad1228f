"""Published 0.1.2 import path ``omgrab.cameras.usb_port``: find a V4L2 node by USB port.

A USB port path such as ``'3-2'`` (bus 3, port 2; ``'1-1.4'`` behind a hub) names where a camera
is plugged in, whatever ``/dev/videoN`` number the kernel gave it this boot. Linux lists the
V4L2 nodes of the port's interfaces under ``/sys/bus/usb/devices/<port>:<config>.<iface>/
video4linux/videoN``; the capture node is the lowest N (UVC cameras add a metadata node after
it). Reads sysfs only; no thread, no file written.
"""

from __future__ import annotations

import pathlib
import re

SYSFS_USB_DEVICES = pathlib.Path("/sys/bus/usb/devices")
_PORT = re.compile(r"\d+-\d+(\.\d+)*")


def find_video_device_by_usb_port(
    port_path: str, sysfs_root: pathlib.Path | None = None
) -> str | None:
    """Return ``/dev/videoN`` of the camera on USB port ``port_path``, or None if none is there.

    Args:
        port_path: USB port path, e.g. ``'3-2'`` or ``'1-1.4'``.
        sysfs_root: Where to look; ``SYSFS_USB_DEVICES`` (``/sys/bus/usb/devices``) when None.

    Raises:
        ValueError: ``port_path`` is not a USB port path.
    """
    if not isinstance(port_path, str) or not _PORT.fullmatch(port_path):
        raise ValueError(f"not a USB port path (like '3-2' or '1-1.4'): {port_path!r}")
    root = SYSFS_USB_DEVICES if sysfs_root is None else sysfs_root
    nodes = root.glob(f"{port_path}:*/video4linux/video*")
    numbers = sorted(int(n.name[len("video") :]) for n in nodes if n.name[5:].isdigit())
    return f"/dev/video{numbers[0]}" if numbers else None
