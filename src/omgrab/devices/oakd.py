"""Luxonis OAK-D capture device on depthai 3 (optional extra: ``pip install omgrab[oakd]``).

``depthai`` (>= 3.3) is imported only when an ``OakDCaptureDevice`` is constructed, so the rest
of omgrab works without it. The on-device pipeline (built on the opened ``dai.Device``):

- Camera CAM_A ``requestOutput((w, h), BGR888i, fps)`` -> host queue ``rgb``
- Camera CAM_B + CAM_C ``requestOutput(400p)`` -> StereoDepth (``build(left, right)``, depth
  aligned to CAM_A, output size = depth size) ``depth`` (uint16 millimetres) -> queue ``depth``
- IMU accelerometer + gyroscope (raw) at the IMU rate -> queue ``imu``

Host queues come from ``Node.Output.createOutputQueue`` (non-blocking, oldest dropped) and the
pipeline runs between ``Pipeline.start()`` and ``Pipeline.stop()``. Timestamps are depthai's
host-synced ``getTimestamp()`` mapped onto the one device clock (see
:mod:`omgrab.devices.oakd_messages`). Camera intrinsics come from the device's factory
calibration (``Device.readCalibration()``) at each stream's output size; depth is aligned to
CAM_A, so it has CAM_A's intrinsics at the depth size.

Lifecycle and errors: ``open()`` connects, builds, attaches queues and starts the pipeline, and
on any failure stops and closes what it started before re-raising; ``close()`` is idempotent.
A lost XLink connection makes ``connected`` False and the streams raise ``FrameUnavailable``.
"""

from __future__ import annotations

import importlib
import logging
import time
import types
from collections.abc import Callable
from typing import Any

from omgrab import clock as clock_mod
from omgrab.cameras import base as camera_base
from omgrab.devices import base, oakd_messages
from omgrab.sensors import base as sensor_base

logger = logging.getLogger(__name__)

DEFAULT_RGB = camera_base.CameraConfig(25, 1280, 800)
DEFAULT_DEPTH = camera_base.CameraConfig(25, 640, 400)
#: Size requested from the mono cameras feeding StereoDepth (their 400p mode).
MONO_SIZE = (640, 400)
_POLL_S = 0.002


def import_depthai() -> types.ModuleType:
    """Import and return ``depthai``.

    Raises:
        ImportError: With installation advice when it is missing.
    """
    try:
        return importlib.import_module("depthai")
    except ImportError as exc:
        raise ImportError(
            "OakDCaptureDevice needs the 'depthai' package: pip install 'omgrab[oakd]'"
        ) from exc


def _poll_queue(queue: Any, timeout_s: float | None, is_open: Callable[[], bool]) -> Any:
    """Return the next message of a depthai output queue, or None on timeout/close."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while is_open():
        message = queue.tryGet()
        if message is not None:
            return message
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(_POLL_S)
    return None


class OakDCamera(camera_base.Camera):
    """One image stream (``'rgb'`` or ``'depth'``) of an OAK-D, read from its XLink queue.

    ``last_sequence_number`` is the device's frame sequence number (``getSequenceNum``) of the
    last frame returned, so capture gap tracking counts exactly the frames the device skipped.
    """

    def __init__(self, device: OakDCaptureDevice, name: str, config: camera_base.CameraConfig):
        super().__init__(config, clock=device.clock, pace=False)
        self._device = device
        self._name = name
        self._queue: Any = None
        self._latest: camera_base.Frame | None = None
        self._sequence: int | None = None
        self._convert = oakd_messages.depth_frame if name == "depth" else oakd_messages.rgb_frame

    @property
    def last_sequence_number(self) -> int | None:
        """Device sequence number of the last frame returned (None if the message has none)."""
        return self._sequence

    @property
    def name(self) -> str:
        """Stream name."""
        return self._name

    @property
    def latest(self) -> camera_base.Frame | None:
        """The last frame returned, if any."""
        return self._latest

    def attach(self, queue: Any) -> None:
        """Set the depthai output queue to read from (done by the device when it opens)."""
        self._queue = queue

    def _open(self) -> None:
        if self._queue is None:
            raise camera_base.FrameUnavailableError(
                f"OAK-D stream {self._name!r}: open the device first"
            )

    def _close(self) -> None:
        self._queue = None

    def _read_frame(self, timeout_s: float | None) -> camera_base.Frame:
        queue = self._queue
        if queue is None or not self._device.connected:
            raise camera_base.FrameUnavailableError(f"OAK-D stream {self._name!r} is not open")
        message = _poll_queue(queue, timeout_s, lambda: self._is_open)
        if message is None:
            raise camera_base.FrameUnavailableError(
                f"no frame from OAK-D stream {self._name!r} within {timeout_s} s"
            )
        frame = self._convert(message, self._clock)
        self._latest = frame
        get_sequence = getattr(message, "getSequenceNum", None)
        self._sequence = int(get_sequence()) if callable(get_sequence) else None
        self._device._mark_delivered(self._name)
        return frame


class OakDImu(sensor_base.Sensor):
    """The OAK-D IMU stream: batches of accelerometer + gyroscope readings as JSON."""

    def __init__(self, device: OakDCaptureDevice, name: str, rate_hz: float):
        super().__init__(clock=device.clock)
        self._device = device
        self._name = name
        self._rate = rate_hz
        self._queue: Any = None
        self._seq = 0

    def attach(self, queue: Any) -> None:
        """Set the depthai output queue to read from (done by the device when it opens)."""
        self._queue = queue

    def _open(self) -> None:
        if self._queue is None:
            raise sensor_base.SensorDataUnavailableError("OAK-D IMU: open the device first")
        self._seq = 0

    def _close(self) -> None:
        self._queue = None

    def _read_item(self, timeout_s: float | None) -> sensor_base.Item:
        queue = self._queue
        if queue is None or not self._device.connected:
            raise sensor_base.SensorDataUnavailableError("OAK-D IMU is not open")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            message = _poll_queue(queue, remaining, lambda: self._is_open)
            if message is None:
                raise sensor_base.SensorDataUnavailableError(
                    f"no IMU data from the OAK-D within {timeout_s} s"
                )
            item = oakd_messages.imu_item(message, self._clock, self._seq, self._rate)
            if item is not None:
                self._seq += 1
                self._device._mark_delivered(self._name)
                return item


class OakDCaptureDevice(base.StreamDevice["OakDCamera", "OakDImu"]):
    """An OAK-D (RGB + aligned stereo depth + IMU) as a capture device.

    Args:
        label: Device label; ``'oakd-<device id>'`` once opened when None.
        rgb: RGB rate and size.
        depth: Depth rate and size (aligned to RGB), or None for no depth.
        imu_rate_hz: IMU rate, or None for no IMU.
        clock: Device clock; must use the system time source for device timestamps to map
            correctly (a manual source is fine for tests with fake messages).
        device_id: Device id (serial) of the OAK to use; the first one found when None.
        queue_size: Host-side XLink queue depth per stream (non-blocking: oldest dropped).
        dai_module: The ``depthai`` module; imported here when None (tests pass a fake).

    Raises:
        ImportError: When depthai is not installed.
    """

    def __init__(
        self,
        label: str | None = None,
        rgb: camera_base.CameraConfig = DEFAULT_RGB,
        depth: camera_base.CameraConfig | None = DEFAULT_DEPTH,
        imu_rate_hz: float | None = 100.0,
        clock: clock_mod.DeviceClock | None = None,
        *,
        device_id: str | None = None,
        queue_size: int = 8,
        dai_module: Any = None,
    ) -> None:
        self._dai = dai_module if dai_module is not None else import_depthai()
        super().__init__(label or "")  # empty: named after the device id
        self._clock = clock if clock is not None else clock_mod.default_clock()
        self._rgb = rgb
        self._depth = depth
        self._imu_rate = imu_rate_hz
        self._device_id = device_id
        self._queue_size = queue_size
        self._device: Any = None
        self._pipeline: Any = None
        self._delivered: set[str] = set()
        self._cameras: dict[str, OakDCamera] = {"rgb": OakDCamera(self, "rgb", rgb)}
        if depth is not None:
            self._cameras["depth"] = OakDCamera(self, "depth", depth)
        self._sensors: dict[str, OakDImu] = {}
        if imu_rate_hz is not None:
            self._sensors["imu"] = OakDImu(self, "imu", imu_rate_hz)

    @property
    def label(self) -> str:
        """Device label."""
        if self._label:
            return self._label
        return f"oakd-{self._device_id}" if self._device_id else "oakd"

    @property
    def device_type(self) -> base.DeviceType:
        """Always ``DeviceType.OAKD``."""
        return base.DeviceType.OAKD

    @property
    def clock(self) -> clock_mod.DeviceClock:
        """The clock every stream stamps with."""
        return self._clock

    @property
    def pipeline(self) -> Any:
        """The running depthai ``Pipeline`` while open, else None."""
        with self._lock:
            return self._pipeline

    @property
    def connected(self) -> bool:
        """Open: the XLink connection is up and the pipeline runs. Closed: an OAK is attached."""
        with self._lock:
            device, pipeline = self._device, self._pipeline
        if device is not None:
            return not device.isClosed() and pipeline is not None and pipeline.isRunning()
        try:
            infos = self._dai.Device.getAllAvailableDevices()
        except Exception:
            logger.exception("listing OAK devices failed")
            return False
        if self._device_id is None:
            return len(infos) > 0
        return any(info.getDeviceId() == self._device_id for info in infos)

    @property
    def ready(self) -> bool:
        """True when open, connected and every stream has delivered data."""
        with self._lock:
            if self._device is None:
                return False
            wanted = set(self._cameras) | set(self._sensors)
            if not wanted <= self._delivered:
                return False
        return self.connected

    def preview(self) -> camera_base.Frame | None:
        """Return the last RGB frame read, or None."""
        return self._cameras["rgb"].latest if self.connected else None

    def _mark_delivered(self, name: str) -> None:
        with self._lock:
            self._delivered.add(name)

    def build_pipeline(self, device: Any) -> tuple[Any, dict[str, Any]]:
        """Build the depthai ``Pipeline`` on ``device``; return it and its outputs by stream."""
        dai = self._dai
        socket = dai.CameraBoardSocket
        pipeline = dai.Pipeline(device)
        color = pipeline.create(dai.node.Camera).build(socket.CAM_A)
        outputs = {
            "rgb": color.requestOutput(
                (self._rgb.width, self._rgb.height),
                type=dai.ImgFrame.Type.BGR888i,
                fps=float(self._rgb.fps),
            )
        }
        if self._depth is not None:
            fps = float(self._depth.fps)
            left = pipeline.create(dai.node.Camera).build(socket.CAM_B)
            right = pipeline.create(dai.node.Camera).build(socket.CAM_C)
            stereo = pipeline.create(dai.node.StereoDepth).build(
                left.requestOutput(MONO_SIZE, fps=fps),
                right.requestOutput(MONO_SIZE, fps=fps),
                presetMode=dai.node.StereoDepth.PresetMode.DEFAULT,
            )
            stereo.setLeftRightCheck(True)
            stereo.setDepthAlign(socket.CAM_A)
            stereo.setOutputSize(self._depth.width, self._depth.height)
            outputs["depth"] = stereo.depth
        if self._imu_rate is not None:
            imu = pipeline.create(dai.node.IMU)
            imu.enableIMUSensor(
                [dai.IMUSensor.ACCELEROMETER_RAW, dai.IMUSensor.GYROSCOPE_RAW],
                int(self._imu_rate),
            )
            imu.setBatchReportThreshold(10)
            imu.setMaxBatchReports(20)
            outputs["imu"] = imu.out
        return pipeline, outputs

    def _connect(self) -> Any:
        dai = self._dai
        if self._device_id is None:
            return dai.Device()
        return dai.Device(dai.DeviceInfo(self._device_id))

    def intrinsics(self) -> dict[str, dict[str, Any]]:
        """Camera intrinsics of each image stream from the device's calibration.

        Connects briefly when the device is not open. Returns, per stream name, ``fx``,
        ``fy``, ``cx``, ``cy`` (pixels at the stream's size), ``width``, ``height`` and
        ``distortion`` (CAM_A's coefficients; depth is aligned to CAM_A).
        """
        with self._lock:
            device = self._device
        temporary = device is None
        if temporary:
            device = self._connect()
        try:
            calibration = device.readCalibration()
            socket = self._dai.CameraBoardSocket.CAM_A
            distortion = [float(v) for v in calibration.getDistortionCoefficients(socket)]
            result = {}
            for name, camera in self._cameras.items():
                size = camera.config
                matrix = calibration.getCameraIntrinsics(socket, size.width, size.height)
                result[name] = {
                    "fx": float(matrix[0][0]),
                    "fy": float(matrix[1][1]),
                    "cx": float(matrix[0][2]),
                    "cy": float(matrix[1][2]),
                    "width": size.width,
                    "height": size.height,
                    "distortion": distortion,
                }
            return result
        finally:
            if temporary:
                device.close()

    def open(self) -> None:
        """Connect, start the pipeline and attach every stream to its host queue."""
        with self._lock:
            if self._device is not None:
                return
        device = self._connect()
        pipeline = None
        try:
            if self._device_id is None:
                self._device_id = str(device.getDeviceId())
            pipeline, outputs = self.build_pipeline(device)
            queues = {
                name: outputs[name].createOutputQueue(maxSize=self._queue_size, blocking=False)
                for name in [*self._cameras, *self._sensors]
            }
            for name, camera in self._cameras.items():
                camera.attach(queues[name])
            for name, sensor in self._sensors.items():
                sensor.attach(queues[name])
            pipeline.start()
            with self._lock:
                self._device = device
                self._pipeline = pipeline
                self._delivered = set()
            for camera in self._cameras.values():
                camera.open()
            for sensor in self._sensors.values():
                sensor.open()
        except BaseException:
            with self._lock:
                attached = self._device is device
            self.close()
            if not attached:
                if pipeline is not None and pipeline.isRunning():
                    pipeline.stop()
                device.close()
            raise
        logger.info("opened %s", self.label)

    def close(self) -> None:
        """Close the streams and the device (idempotent)."""
        for camera in self._cameras.values():
            camera.close()
            camera.attach(None)
        for sensor in self._sensors.values():
            sensor.close()
            sensor.attach(None)
        with self._lock:
            device, self._device = self._device, None
            pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None and pipeline.isRunning():
            pipeline.stop()
        if device is not None:
            device.close()
