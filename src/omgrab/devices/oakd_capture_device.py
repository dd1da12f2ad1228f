"""Published 0.1.2 import path ``omgrab.devices.oakd_capture_device``: the 0.1.2 OAK-D device.

:class:`OakDCaptureDevice` has omgrab 0.1.2's constructor
``(rgb_config, depth_config, max_queue_size=200, imu_rate_hz=0, preview_config=None,
pipeline_config=PipelineConfig())`` and its queue-based API (``rgb_queue``, ``depth_queue``,
``imu_queue``, ``get_rgb_camera()`` -> ``OakDRGBCamera``, ``get_imu_source()`` ->
``QueueReaderSensor``, ``preview()`` context manager). ``omgrab.devices.OakDCaptureDevice`` is
this class; the depthai 3 backend it runs on is :class:`omgrab.devices.oakd.OakDCaptureDevice`.

Data path::

    depthai host queues --> backend streams (devices.oakd) --pump threads--> rgb_queue,
    depth_queue, imu_queue (queue.Queue) --> OakDRGBCamera / OakDDepthCamera / QueueReaderSensor

Bounds: each output queue holds at most ``max_queue_size`` items; a pump drops the item it
cannot put (the consumer is behind) and counts it in ``frames_dropped`` (0.1.2 dropped too).
The first ``pipeline_config.warmup_frames`` frames of each image stream are discarded (sensor
settling, as 0.1.2); the device is ``ready`` once every image stream is past them.

Lifecycle: ``__enter__`` opens the backend and starts one daemon pump thread per stream;
``__exit__`` stops the pumps (joined within ``pipeline_config.shutdown_timeout_s``) and closes
the backend. ``preview()`` runs an RGB-only backend at ``preview_config`` into
``get_preview_camera()``'s queue, never together with a recording.

Error policy: a read timeout is not an error (the pump reads again). Any other error in a pump
is counted in ``pump_errors``, logged with its traceback and kept in ``last_error``; the pump
keeps reading after a short pause until the device is closed.
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import logging
import queue
import threading
import time
import types
from typing import Any, Literal

import cv2  # noqa: F401 - 0.1.2's module exposed it; its tests patch oakd_capture_device.cv2

from omgrab.cameras import base as camera_base
from omgrab.cameras import oakd_camera
from omgrab.devices import capture_device, oakd, oakd_device_type
from omgrab.sensors import base as sensor_base
from omgrab.sensors import queue_reader_sensor

logger = logging.getLogger(__name__)

_READ_TIMEOUT_S = 0.2
_ERROR_PAUSE_S = 0.1


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """How the device warms up and shuts down (omgrab 0.1.2).

    Attributes:
        warmup_frames: Frames of each image stream discarded before the device is ready.
        startup_grace_s: Accepted for compatibility; unused (stale frames are not detected
            by age here: the backend's timestamps are the device's).
        shutdown_timeout_s: Longest wait for each pump thread at ``__exit__``.
    """

    warmup_frames: int = 10
    startup_grace_s: float = 3.0
    shutdown_timeout_s: float = 2.0


_DEFAULT_PIPELINE_CONFIG = PipelineConfig()


class _Pump:
    """Moves one backend stream's items into a ``queue.Queue`` on its own thread."""

    def __init__(
        self,
        owner: OakDCaptureDevice,
        name: str,
        source: camera_base.Camera | sensor_base.Sensor,
        target: queue.Queue[Any],
        warmup: int,
    ) -> None:
        self.name = name
        self._owner = owner
        self._source = source
        self._target = target
        self._warmup = warmup
        self.stop = threading.Event()
        self.warmed_up = threading.Event()
        if warmup <= 0:
            self.warmed_up.set()
        self.thread = threading.Thread(target=self._run, name=f"oakd-pump-{name}", daemon=True)

    def _read(self) -> Any:
        if isinstance(self._source, camera_base.Camera):
            return self._source.get_next_frame(timeout_s=_READ_TIMEOUT_S)
        return self._source.get_next_item(timeout_s=_READ_TIMEOUT_S)

    def _run(self) -> None:
        seen = 0
        while not self.stop.is_set():
            try:
                item = self._read()
            except (camera_base.FrameUnavailableError, sensor_base.SensorDataUnavailableError):
                continue  # nothing within the read timeout, or the device is going away
            except Exception as exc:
                self._owner._pump_failed(self.name, exc)
                self.stop.wait(_ERROR_PAUSE_S)
                continue
            seen += 1
            if seen <= self._warmup:
                if seen == self._warmup:
                    self.warmed_up.set()
                continue
            try:
                self._target.put_nowait(item)
            except queue.Full:
                self._owner._count_drop(self.name)


class OakDCaptureDevice:
    """An OAK-D with omgrab 0.1.2's constructor and queue API (see the module docstring).

    Args:
        rgb_config: RGB rate and size.
        depth_config: Depth rate and size (aligned to RGB).
        max_queue_size: Items each output queue holds.
        imu_rate_hz: IMU rate; 0 disables the IMU.
        preview_config: RGB rate and size of the ``preview()`` pipeline, or None for none.
        pipeline_config: Warm-up and shutdown settings.
        label: Device label (0.1.2: always ``'oakd'``).
        clock: Device clock of the backend (the process clock when None).
        device_id: Serial of the OAK to use; the first found when None.
        dai_module: The ``depthai`` module (tests pass a fake); imported when None.

    Raises:
        ImportError: ``depthai`` is not installed (``pip install 'omgrab[oakd]'``).
    """

    def __init__(
        self,
        rgb_config: camera_base.CameraConfig,
        depth_config: camera_base.CameraConfig,
        max_queue_size: int = 200,
        imu_rate_hz: int = 0,
        preview_config: camera_base.CameraConfig | None = None,
        pipeline_config: PipelineConfig = _DEFAULT_PIPELINE_CONFIG,
        *,
        label: str = "oakd",
        clock: Any = None,
        device_id: str | None = None,
        dai_module: Any = None,
    ) -> None:
        if max_queue_size < 1:
            raise ValueError(f"max_queue_size must be >= 1, got {max_queue_size!r}")
        if imu_rate_hz < 0:
            raise ValueError(f"imu_rate_hz must be >= 0 (0 disables the IMU), got {imu_rate_hz}")
        self._rgb_config = rgb_config
        self._depth_config = depth_config
        self._imu_rate_hz = imu_rate_hz
        self._preview_config = preview_config
        self._pipeline_config = pipeline_config
        self._label = label
        self._backend_options: dict[str, Any] = {
            "clock": clock,
            "device_id": device_id,
            "dai_module": dai_module,
        }
        self._backend = oakd.OakDCaptureDevice(
            label,
            rgb_config,
            depth_config,
            float(imu_rate_hz) if imu_rate_hz > 0 else None,
            **self._backend_options,
        )
        self._rgb_queue: queue.Queue[oakd_camera.TimestampedRGBFrame] = queue.Queue(max_queue_size)
        self._depth_queue: queue.Queue[oakd_camera.TimestampedDepthFrame] = queue.Queue(
            max_queue_size
        )
        self._imu_queue: queue.Queue[oakd_camera.TimestampedIMUData] | None = (
            queue.Queue(max_queue_size) if imu_rate_hz > 0 else None
        )
        self._preview_queue: queue.Queue[oakd_camera.TimestampedRGBFrame] | None = (
            queue.Queue(max_queue_size) if preview_config is not None else None
        )
        self._rgb_camera = oakd_camera.OakDRGBCamera(rgb_config, self._rgb_queue)
        self._depth_camera = oakd_camera.OakDDepthCamera(depth_config, self._depth_queue)
        self._sensors: dict[str, sensor_base.Sensor] = {}
        if self._imu_queue is not None:
            self._sensors["imu"] = queue_reader_sensor.QueueReaderSensor(self._imu_queue)
        self._lock = threading.Lock()
        self._pumps: list[_Pump] = []
        self._running: oakd.OakDCaptureDevice | None = None  # the backend now open
        self._previewing = False
        self._device_type: oakd_device_type.OakDDeviceType | None = None
        self.pump_errors = 0
        self.last_error: str | None = None
        self.frames_dropped: collections.Counter[str] = collections.Counter()

    # -- 0.1.2 properties and accessors -------------------------------------------------------

    @property
    def label(self) -> str:
        """Device label (``'oakd'`` unless given)."""
        return self._label

    @property
    def connected(self) -> bool:
        """While running: ``ready``; otherwise whether an OAK is attached (0.1.2)."""
        with self._lock:
            running = self._running is not None
        return self.ready if running else self._backend.connected

    @property
    def ready(self) -> bool:
        """True while recording and every image stream is past its warm-up frames."""
        with self._lock:
            pumps = list(self._pumps)
            running = self._running is not None and not self._previewing
        return running and all(p.warmed_up.is_set() for p in pumps)

    def wait_until_ready(self, timeout: float | None = None) -> bool:
        """Wait until ``ready`` or ``timeout`` seconds pass (None: no limit); return it."""
        with self._lock:
            pumps = list(self._pumps)
        if not pumps:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        for pump in pumps:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not pump.warmed_up.wait(remaining):
                return False
        return self.ready

    @property
    def device_type(self) -> str | None:
        """The OAK-D variant read at start (e.g. ``'oakd_pro_wide'``), or None (0.1.2)."""
        with self._lock:
            variant = self._device_type
        return None if variant is None else variant.value

    def _set_device_type(self, device_type: oakd_device_type.OakDDeviceType | None) -> None:
        with self._lock:
            self._device_type = device_type

    @property
    def rgb_queue(self) -> queue.Queue[oakd_camera.TimestampedRGBFrame]:
        """Queue of ``(rgb_frame, timestamp)`` the device fills while recording."""
        return self._rgb_queue

    @property
    def depth_queue(self) -> queue.Queue[oakd_camera.TimestampedDepthFrame]:
        """Queue of ``(depth_frame, timestamp)`` the device fills while recording."""
        return self._depth_queue

    @property
    def imu_queue(self) -> queue.Queue[oakd_camera.TimestampedIMUData] | None:
        """Queue of ``(imu_json_bytes, timestamp)``, or None when the IMU is disabled."""
        return self._imu_queue

    @property
    def imu_enabled(self) -> bool:
        """Whether the IMU is recorded (``imu_rate_hz > 0``)."""
        return self._imu_queue is not None

    @property
    def cameras(self) -> dict[str, camera_base.Camera]:
        """The queue-reading cameras by stream name (this package's device contract)."""
        return {"rgb": self._rgb_camera, "depth": self._depth_camera}

    @property
    def sensors(self) -> dict[str, sensor_base.Sensor]:
        """The IMU reader (when enabled) by stream name."""
        return dict(self._sensors)

    def get_rgb_camera(self) -> oakd_camera.OakDRGBCamera:
        """The RGB camera (reads ``rgb_queue``)."""
        return self._rgb_camera

    def get_depth_camera(self) -> oakd_camera.OakDDepthCamera:
        """The depth camera (reads ``depth_queue``)."""
        return self._depth_camera

    def get_imu_source(self) -> queue_reader_sensor.QueueReaderSensor:
        """The IMU reader.

        Raises:
            RuntimeError: The IMU is not enabled (``imu_rate_hz=0``).
        """
        sensor = self._sensors.get("imu")
        if not isinstance(sensor, queue_reader_sensor.QueueReaderSensor):
            raise RuntimeError("IMU is not enabled (imu_rate_hz=0)")
        return sensor

    def get_preview_camera(self) -> oakd_camera.OakDRGBCamera:
        """The preview camera; it delivers frames only inside ``preview()``.

        Raises:
            RuntimeError: No ``preview_config`` was given.
        """
        if self._preview_config is None or self._preview_queue is None:
            raise RuntimeError("Preview is not enabled (preview_config was not provided)")
        return oakd_camera.OakDRGBCamera(self._preview_config, self._preview_queue)

    @contextlib.contextmanager
    def preview(self) -> collections.abc.Iterator[OakDCaptureDevice]:
        """Run an RGB-only pipeline at ``preview_config`` (never while recording).

        Raises:
            PreviewUnavailableError: No ``preview_config`` was given.
            RuntimeError: The device is recording.
        """
        if self._preview_config is None or self._preview_queue is None:
            raise capture_device.PreviewUnavailableError(
                "Preview is not enabled (preview_config was not provided)"
            )
        preview_backend = oakd.OakDCaptureDevice(
            self._label, self._preview_config, None, None, **self._backend_options
        )
        self._start(preview_backend, {"rgb": self._preview_queue}, previewing=True)
        try:
            yield self
        finally:
            self._stop()

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> OakDCaptureDevice:
        """Open the OAK-D and start filling the queues.

        Raises:
            RuntimeError: The device is already recording or previewing.
        """
        targets: dict[str, queue.Queue[Any]] = {"rgb": self._rgb_queue, "depth": self._depth_queue}
        if self._imu_queue is not None:
            targets["imu"] = self._imu_queue
        self._start(self._backend, targets, previewing=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> Literal[False]:
        """Stop the pumps and close the OAK-D; exceptions propagate."""
        self._stop()
        return False

    def _start(
        self,
        backend: oakd.OakDCaptureDevice,
        targets: dict[str, queue.Queue[Any]],
        previewing: bool,
    ) -> None:
        with self._lock:
            if self._running is not None:
                raise RuntimeError(
                    "OakD camera already in use."
                    if not self._previewing
                    else "Cannot start recording while preview pipeline is running."
                )
            self._running = backend
            self._previewing = previewing
        try:
            backend.open()
        except BaseException:
            with self._lock:
                self._running = None
            raise
        self._set_device_type(oakd_device_type.detect_from_pipeline(backend.pipeline))
        sources: dict[str, camera_base.Camera | sensor_base.Sensor] = {
            **backend.cameras,
            **backend.sensors,
        }
        warmup = self._pipeline_config.warmup_frames
        pumps = [
            _Pump(self, name, sources[name], target, 0 if name == "imu" else warmup)
            for name, target in targets.items()
        ]
        with self._lock:
            self._pumps = pumps
        for pump in pumps:
            pump.thread.start()

    def _stop(self) -> None:
        with self._lock:
            backend, self._running = self._running, None
            pumps, self._pumps = self._pumps, []
            self._previewing = False
        for pump in pumps:
            pump.stop.set()
        for pump in pumps:
            pump.thread.join(self._pipeline_config.shutdown_timeout_s)
            if pump.thread.is_alive():
                logger.error(
                    "%s still running after %.1f s",
                    pump.thread.name,
                    self._pipeline_config.shutdown_timeout_s,
                )
        if backend is not None:
            backend.close()

    def _count_drop(self, name: str) -> None:
        with self._lock:
            self.frames_dropped[name] += 1

    def _pump_failed(self, name: str, exc: BaseException) -> None:
        with self._lock:
            self.pump_errors += 1
            self.last_error = f"stream {name!r}: {type(exc).__name__}: {exc}"
        logger.error("OAK-D stream %r: reading failed", name, exc_info=exc)


__all__ = ["OakDCaptureDevice", "PipelineConfig"]

#: 0.1.2's (private) pipeline-runner class name. Code written for 0.1.2 may name it in type
#: annotations, which Python evaluates at import; this alias keeps such modules importable.
#: The pumps here are not 0.1.2's runner and have none of its methods.
_RecordingPipelineRunner = _Pump
