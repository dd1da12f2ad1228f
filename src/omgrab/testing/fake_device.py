"""A minimal, scriptable capture device for users' own tests.

``FakeCaptureDevice`` implements the ``omgrab.devices.CaptureDevice`` protocol with state set by
hand: flip ``connected`` and ``ready`` from the test, make ``open`` fail, and count opens and
closes. Its streams are whatever cameras and sensors you give it (small synthetic ones by
default). For realistic faults (stalls, slow streams, disconnects that make reads fail) use
``omgrab.devices.SimulatedCaptureDevice`` instead.
"""

from __future__ import annotations

import threading
import time

from omgrab import clock as clock_mod
from omgrab.cameras import base as camera_base
from omgrab.cameras import synthetic
from omgrab.devices import base
from omgrab.sensors import base as sensor_base
from omgrab.sensors import synthetic_imu

SMALL_CAMERA = camera_base.CameraConfig(10, 64, 48)


class FakeCaptureDevice(base.StreamDevice[camera_base.Camera, sensor_base.Sensor]):
    """A capture device whose state a test sets directly.

    ``ready`` is True only while the device is open, connected and marked ready (the default),
    so a freshly constructed fake behaves like a healthy device that becomes ready when opened.

    Args:
        label: Device label.
        cameras: Cameras by stream name; a 64x48 @ 10 fps ``SyntheticCamera`` as ``'rgb'`` when
            None.
        sensors: Sensors by stream name; a 50 Hz ``SyntheticImu`` as ``'imu'`` when None (pass
            ``{}`` for none).
        connected: Initial ``connected`` value.
        ready: Whether the device reports ready once open.
        device_type: Reported device type.
        clock: Clock for the default streams; the process-wide clock when None.
        open_error: Exception raised by ``open()`` (e.g. to test start-up failures), or None.
    """

    def __init__(
        self,
        label: str = "fake-0",
        cameras: dict[str, camera_base.Camera] | None = None,
        sensors: dict[str, sensor_base.Sensor] | None = None,
        *,
        connected: bool = True,
        ready: bool = True,
        device_type: base.DeviceType = base.DeviceType.SIMULATED,
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
    def device_type(self) -> base.DeviceType:
        """The device type given at construction."""
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
        """True while open, connected and marked ready."""
        with self._cond:
            return self._open and self._connected and self._ready

    def set_connected(self, connected: bool) -> None:
        """Set ``connected`` (False also makes ``ready`` False)."""
        with self._cond:
            self._connected = connected
            self._cond.notify_all()

    def set_ready(self, ready: bool) -> None:
        """Mark the device ready or not ready."""
        with self._cond:
            self._ready = ready
            self._cond.notify_all()

    def wait_until_ready(self, timeout: float) -> bool:
        """Block until ``ready`` (woken by ``set_ready``/``set_connected``/``open``)."""
        end = time.monotonic() + timeout
        with self._cond:
            while not (self._open and self._connected and self._ready):
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def preview(self) -> camera_base.Frame | None:
        """Return ``preview_frame`` if set, else a rendered synthetic RGB frame, else None."""
        if self.preview_frame is not None:
            return self.preview_frame
        camera = self._cameras.get("rgb")
        if not self.ready or not isinstance(camera, synthetic.SyntheticCamera):
            return None
        return camera.render(camera.frames_generated), camera.clock.now()

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
