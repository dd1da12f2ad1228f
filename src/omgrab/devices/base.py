"""The capture-device contract: a physical unit bundling cameras and sensors."""

from __future__ import annotations

import enum
import types
from typing import Protocol, runtime_checkable

from omgrab.cameras import base as camera_base
from omgrab.sensors import base as sensor_base


class DeviceType(enum.Enum):
    """Kind of capture device."""

    SIMULATED = "simulated"
    USB = "usb"
    OAKD = "oakd"


@runtime_checkable
class CaptureDevice(Protocol):
    """A capture device such as an OAK-D or a set of USB cameras.

    Devices are opened per recording (context manager) and polled for health while recording.
    """

    @property
    def label(self) -> str:
        """Human-readable name, e.g. ``'oakd-1844301011B5461200'``."""
        ...

    @property
    def device_type(self) -> DeviceType:
        """Kind of device."""
        ...

    @property
    def connected(self) -> bool:
        """True while the hardware is present (a pulled cable makes this False)."""
        ...

    @property
    def ready(self) -> bool:
        """True once opened and delivering data."""
        ...

    @property
    def cameras(self) -> dict[str, camera_base.Camera]:
        """The device's cameras by stream name (e.g. ``'rgb'``, ``'depth'``)."""
        ...

    @property
    def sensors(self) -> dict[str, sensor_base.Sensor]:
        """The device's sensors by stream name (e.g. ``'imu'``)."""
        ...

    def wait_until_ready(self, timeout: float) -> bool:
        """Block until ready or ``timeout`` seconds pass; return ``ready``."""
        ...

    def preview(self) -> camera_base.Frame | None:
        """Return the latest RGB frame for a live preview, or None when none is available."""
        ...

    def __enter__(self) -> CaptureDevice: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None: ...
