"""A minimal, scriptable capture device for users' own tests.

``FakeCaptureDevice`` implements the ``omgrab.devices.CaptureDevice`` protocol with state set by
hand: flip ``connected`` and ``ready`` from the test, make ``open`` fail, and count opens and
closes. Its streams are whatever cameras and sensors you give it (small synthetic ones by
default). For realistic faults (stalls, slow streams, disconnects that make reads fail) use
``omgrab.devices.SimulatedCaptureDevice`` instead.

It keeps omgrab 0.1.2's ``omgrab.testing.FakeCaptureDevice`` semantics (``docs/compat.md``):
label ``'fake'``, ``ready`` is the flag given or set (open or not), ``wait_until_ready``
returns that flag at once, ``device_type`` is None unless given, a second ``__enter__``
raises ``RuntimeError``, ``__exit__`` returns False and ``preview()`` raises
``PreviewUnavailableError`` (unless the test set ``preview_frame``).
"""

from __future__ import annotations

import threading
import types
from typing import Literal

from omgrab import clock as clock_mod
from omgrab.cameras import base as camera_base
from omgrab.cameras import synthetic
from omgrab.devices import base, capture_device
from omgrab.sensors import base as sensor_base
from omgrab.sensors import synthetic_imu

SMALL_CAMERA = camera_base.CameraConfig(10, 64, 48)


class FakeCaptureDevice(base.StreamDevice[camera_base.Camera, sensor_base.Sensor]):
    """A capture device whose state a test sets directly (0.1.2 semantics, module doc).

    Args:
        label: Device label.
        cameras: Cameras by stream name; a 64x48 @ 10 fps ``SyntheticCamera`` as ``'rgb'`` when
            None.
        sensors: Sensors by stream name; a 50 Hz ``SyntheticImu`` as ``'imu'`` when None (pass
            ``{}`` for none).
        connected: Initial ``connected`` value.
        ready: Initial ``ready`` value (the device reports it whether open or not).
        device_type: Reported device type (a ``DeviceType``, 0.1.2's string, or None).
        clock: Clock for the default streams; the process-wide clock when None.
        open_error: Exception raised by ``open()`` (e.g. to test start-up failures), or None.
    """

    def __init__(
        self,
        label: str = "fake",
        cameras: dict[str, camera_base.Camera] | None = None,
        sensors: dict[str, sensor_base.Sensor] | None = None,
        *,
        connected: bool = True,
        ready: bool = True,
        device_type: base.DeviceType | str | None = None,
        clock: clock_mod.DeviceClock | None = None,
        open_error: BaseException | None = None,
    ) -> None:
        self._label = label
        self._device_type = device_type
        if cameras is None:
            cameras = {"rgb": synthetic.SyntheticCamera(SMALL_CAMERA, clock=clock)}
        if sensors is None:
            sensors = {"imu": synthetic_imu.SyntheticImu(50.0, 5, clock=clock)}
        self._cameras = dict(cameras)
        self._sensors = dict(sensors)
        self._cond = threading.Condition()
        # Guarded by _cond.
        self._connected = connected
        self._ready = ready
        self._open = False
        self.open_error = open_error
        self.open_count = 0
        self.close_count = 0
        self.preview_frame: camera_base.Frame | None = None

    @property
    def label(self) -> str:
        """Device label."""
        return self._label

    @property
    def device_type(self) -> base.DeviceType | str | None:
        """The device type given at construction (None by default, as 0.1.2)."""
        return self._device_type

    @property
    def is_open(self) -> bool:
        """True between open and close."""
        with self._cond:
            return self._open

    @property
    def opened(self) -> bool:
        """True between open and close (omgrab 0.1.2's name for ``is_open``)."""
        return self.is_open

    @property
    def connected(self) -> bool:
        """The value last set with ``set_connected`` (or given at construction)."""
        with self._cond:
            return self._connected

    @property
    def ready(self) -> bool:
        """The ready flag (given at construction or with ``set_ready``)."""
        with self._cond:
            return self._ready

    def set_connected(self, connected: bool) -> None:
        """Set ``connected``."""
        with self._cond:
            self._connected = connected
            self._cond.notify_all()

    def set_ready(self, ready: bool) -> None:
        """Mark the device ready or not ready."""
        with self._cond:
            self._ready = ready
            self._cond.notify_all()

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Return ``ready`` at once (0.1.2; ``timeout`` is accepted and not waited)."""
        return self.ready

    def preview(self) -> camera_base.Frame:
        """Return ``preview_frame`` when the test set one.

        Raises:
            PreviewUnavailableError: No ``preview_frame`` set (0.1.2: the fake has no preview).
        """
        if self.preview_frame is None:
            raise capture_device.PreviewUnavailableError(
                "Preview not supported in FakeCaptureDevice"
            )
        return self.preview_frame

    def __enter__(self) -> FakeCaptureDevice:
        """Open the device.

        Raises:
            RuntimeError: It is already open (0.1.2).
        """
        if self.is_open:
            raise RuntimeError(f"FakeCaptureDevice {self._label!r} already open")
        self.open()
        return self

    def __exit__(  # type: ignore[override]  # 0.1.2 returns False
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> Literal[False]:
        """Close the device; exceptions propagate (returns False, as 0.1.2)."""
        self.close()
        return False

    def open(self) -> None:
        """Open every stream; raises ``open_error`` when set."""
        with self._cond:
            if self._open:
                return
            if self.open_error is not None:
                raise self.open_error
        self._open_streams()
        with self._cond:
            self._open = True
            self.open_count += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Close every stream (idempotent)."""
        with self._cond:
            if not self._open:
                return
            self._open = False
            self.close_count += 1
            self._cond.notify_all()
        self._close_streams()
