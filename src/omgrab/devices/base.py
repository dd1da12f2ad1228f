"""The capture-device contract: a physical unit bundling cameras and sensors."""

from __future__ import annotations

import abc
import enum
import threading
import time
import types
from collections.abc import Mapping
from typing import Generic, Protocol, TypeVar, runtime_checkable

from omgrab import lifecycle
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
    def device_type(self) -> DeviceType | str | None:
        """Kind of device (test fakes may report 0.1.2's string or None)."""
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
    ) -> bool | None: ...


CameraT = TypeVar("CameraT", bound=camera_base.Camera)
SensorT = TypeVar("SensorT", bound=sensor_base.Sensor)
StreamT = TypeVar("StreamT")


class StreamDevice(lifecycle.OpenCloseContext, Generic[CameraT, SensorT]):
    """Plumbing every capture device shares: label, streams, open state and their lock.

    Provides the ``label``/``cameras``/``sensors`` views, opening and closing all streams
    (rolling back on a failed open) once under ``_lock``, a polling ``wait_until_ready`` and the
    context manager. A backend adds what differs: ``device_type``, ``connected``, ``ready``,
    ``preview`` and, when opening is more than opening the streams, its own ``open``/``close``.

    Args:
        label: Device label.
        cameras: Cameras by stream name (a backend whose streams need ``self`` fills
            ``_cameras`` after calling this).
        sensors: Sensors by stream name.
    """

    _cameras: dict[str, CameraT]
    _sensors: dict[str, SensorT]
    _lock: threading.Lock
    _open: bool

    def __init__(
        self,
        label: str,
        cameras: Mapping[str, CameraT] | None = None,
        sensors: Mapping[str, SensorT] | None = None,
    ) -> None:
        self._label = label
        self._cameras = dict(cameras or {})
        self._sensors = dict(sensors or {})
        self._lock = threading.Lock()
        self._open = False  # guarded by _lock

    @property
    def label(self) -> str:
        """Device label."""
        return self._label

    @property
    def _streams_open(self) -> bool:
        """True between ``open()`` and ``close()`` of the default (stream-only) lifecycle."""
        with self._lock:
            return self._open

    def open(self) -> None:
        """Open every stream (idempotent); on failure close the ones opened and re-raise."""
        self._open_once()

    def close(self) -> None:
        """Close every stream (idempotent)."""
        self._close_once()

    def wait_until_ready(self, timeout: float) -> bool:
        """Poll ``ready`` every 10 ms for up to ``timeout`` seconds (real time); return it."""
        end = time.monotonic() + timeout
        while not self.ready:
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True

    @property
    @abc.abstractmethod
    def ready(self) -> bool:
        """True once opened and delivering data."""

    @property
    def cameras(self) -> dict[str, camera_base.Camera]:
        """The device's cameras by stream name."""
        return dict[str, camera_base.Camera](self._cameras)

    @property
    def sensors(self) -> dict[str, sensor_base.Sensor]:
        """The device's sensors by stream name."""
        return dict[str, sensor_base.Sensor](self._sensors)

    @property
    def stream_names(self) -> list[str]:
        """Names of all cameras and sensors."""
        return [*self._cameras, *self._sensors]

    # -- omgrab 0.1.2 accessors (docs/compat.md) -------------------------------------------

    def get_rgb_camera(self) -> CameraT:
        """Return the ``'rgb'`` camera (omgrab 0.1.2 accessor).

        Raises:
            RuntimeError: The device has no RGB camera.
        """
        return self._stream_by_name(self._cameras, "rgb", "camera")

    def get_depth_camera(self) -> CameraT:
        """Return the ``'depth'`` camera (omgrab 0.1.2 accessor).

        Raises:
            RuntimeError: The device has no depth camera.
        """
        return self._stream_by_name(self._cameras, "depth", "camera")

    def get_imu_source(self) -> SensorT:
        """Return the ``'imu'`` sensor (omgrab 0.1.2 accessor).

        Raises:
            RuntimeError: IMU is not enabled on this device.
        """
        return self._stream_by_name(self._sensors, "imu", "sensor")

    @property
    def imu_enabled(self) -> bool:
        """Whether the device has an IMU stream (omgrab 0.1.2)."""
        return "imu" in self._sensors

    def _stream_by_name(self, streams: dict[str, StreamT], name: str, kind: str) -> StreamT:
        if name not in streams:
            raise RuntimeError(
                f"{type(self).__name__} has no {name!r} {kind} (it has {sorted(streams)})"
            )
        return streams[name]

    def _open_streams(self) -> None:
        """Open every camera and sensor; if one fails, close those opened and re-raise."""
        opened: list[lifecycle.Openable] = []
        try:
            for stream in [*self._cameras.values(), *self._sensors.values()]:
                stream.open()
                opened.append(stream)
        except BaseException:
            for stream in reversed(opened):
                stream.close()
            raise

    def _close_streams(self) -> None:
        """Close every camera and sensor."""
        for stream in [*self._cameras.values(), *self._sensors.values()]:
            stream.close()

    def _open_once(self) -> None:
        """Open every stream under ``self._lock`` unless ``self._open`` (then set it)."""
        with self._lock:
            if self._open:
                return
            self._open_streams()
            self._open = True

    def _close_once(self) -> None:
        """Close every stream under ``self._lock`` if ``self._open`` (then clear it)."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            self._close_streams()
