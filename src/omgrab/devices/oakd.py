"""Luxonis OAK-D capture device (optional ``oakd`` extra: ``pip install omgrab[oakd]``).

``depthai`` (v2 API) is imported only when an ``OakDCaptureDevice`` is constructed, so the rest
of omgrab works without it. The on-device pipeline is:

- ColorCamera (CAM_A) ``video`` output at the RGB size and rate -> XLinkOut ``rgb``
- MonoCamera CAM_B + CAM_C (400p) -> StereoDepth (aligned to CAM_A, output size = depth size)
  ``depth`` output (uint16 millimetres) -> XLinkOut ``depth``
- IMU accelerometer + gyroscope (raw) at the IMU rate -> XLinkOut ``imu``

Host-side message conversion lives in ``omgrab.devices.oakd_messages``.
"""

from __future__ import annotations

import importlib
import logging
import threading
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
    """One image stream (``'rgb'`` or ``'depth'``) of an OAK-D, read from its XLink queue."""

    def __init__(self, device: OakDCaptureDevice, name: str, config: camera_base.CameraConfig):
        super().__init__(config, clock=device.clock, pace=False)
        self._device = device
        self._name = name
        self._queue: Any = None
        self._latest: camera_base.Frame | None = None
        self._convert = oakd_messages.depth_frame if name == "depth" else oakd_messages.rgb_frame

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
        label: Device label; ``'oakd-<mxid>'`` once opened when None.
        rgb: RGB rate and size.
        depth: Depth rate and size (aligned to RGB), or None for no depth.
        imu_rate_hz: IMU rate, or None for no IMU.
        clock: Device clock; must use the system time source for device timestamps to map
            correctly (a manual source is fine for tests with fake messages).
        device_id: MxID (serial) of the OAK to use; the first one found when None.
        queue_size: Host-side XLink queue depth per stream (non-blocking: oldest dropped).
        color_resolution: Name of the ``ColorCameraProperties.SensorResolution`` member
            (``'THE_800_P'`` for OV9782 sensors, ``'THE_1080_P'`` for IMX378 ones).
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
        color_resolution: str = "THE_800_P",
        dai_module: Any = None,
    ) -> None:
        self._dai = dai_module if dai_module is not None else import_depthai()
        self._label = label
        self._clock = clock if clock is not None else clock_mod.default_clock()
        self._rgb = rgb
        self._depth = depth
        self._imu_rate = imu_rate_hz
        self._device_id = device_id
        self._queue_size = queue_size
        self._color_resolution = color_resolution
        self._lock = threading.Lock()
        self._device: Any = None
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
        if self._label is not None:
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
    def connected(self) -> bool:
        """Open: the XLink connection is up. Closed: a matching OAK is attached."""
        with self._lock:
            device = self._device
        if device is not None:
            return not device.isClosed()
        try:
            infos = self._dai.Device.getAllAvailableDevices()
        except Exception:
            logger.exception("listing OAK devices failed")
            return False
        if self._device_id is None:
            return len(infos) > 0
        return any(info.getMxId() == self._device_id for info in infos)

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

    def wait_until_ready(self, timeout: float) -> bool:
        """Poll ``ready`` for up to ``timeout`` seconds; return it.

        Nothing reads the streams here, so call it while the streams are being consumed, or
        rely on ``connected`` for a device that was just opened.
        """
        end = time.monotonic() + timeout
        while not self.ready:
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True

    def preview(self) -> camera_base.Frame | None:
        """Return the last RGB frame read, or None."""
        return self._cameras["rgb"].latest if self.connected else None

    def _mark_delivered(self, name: str) -> None:
        with self._lock:
            self._delivered.add(name)

    def build_pipeline(self) -> Any:
        """Build and return the depthai ``Pipeline`` for the configured streams."""
        dai = self._dai
        pipeline = dai.Pipeline()

        color = pipeline.create(dai.node.ColorCamera)
        color.setBoardSocket(dai.CameraBoardSocket.CAM_A)
        color.setResolution(
            getattr(dai.ColorCameraProperties.SensorResolution, self._color_resolution)
        )
        color.setVideoSize(self._rgb.width, self._rgb.height)
        color.setFps(float(self._rgb.fps))
        rgb_out = pipeline.create(dai.node.XLinkOut)
        rgb_out.setStreamName("rgb")
        color.video.link(rgb_out.input)

        if self._depth is not None:
            mono_resolution = dai.MonoCameraProperties.SensorResolution.THE_400_P
            left = pipeline.create(dai.node.MonoCamera)
            left.setBoardSocket(dai.CameraBoardSocket.CAM_B)
            left.setResolution(mono_resolution)
            left.setFps(float(self._depth.fps))
            right = pipeline.create(dai.node.MonoCamera)
            right.setBoardSocket(dai.CameraBoardSocket.CAM_C)
            right.setResolution(mono_resolution)
            right.setFps(float(self._depth.fps))
            stereo = pipeline.create(dai.node.StereoDepth)
            stereo.setDefaultProfilePreset(dai.node.StereoDepth.PresetMode.HIGH_DENSITY)
            stereo.setLeftRightCheck(True)
            stereo.setDepthAlign(dai.CameraBoardSocket.CAM_A)
            stereo.setOutputSize(self._depth.width, self._depth.height)
            left.out.link(stereo.left)
            right.out.link(stereo.right)
            depth_out = pipeline.create(dai.node.XLinkOut)
            depth_out.setStreamName("depth")
            stereo.depth.link(depth_out.input)

        if self._imu_rate is not None:
            imu = pipeline.create(dai.node.IMU)
            imu.enableIMUSensor(
                [dai.IMUSensor.ACCELEROMETER_RAW, dai.IMUSensor.GYROSCOPE_RAW],
                int(self._imu_rate),
            )
            imu.setBatchReportThreshold(10)
            imu.setMaxBatchReports(20)
            imu_out = pipeline.create(dai.node.XLinkOut)
            imu_out.setStreamName("imu")
            imu.out.link(imu_out.input)
        return pipeline

    def open(self) -> None:
        """Start the pipeline on the device and attach every stream to its queue."""
        with self._lock:
            if self._device is not None:
                return
        dai = self._dai
        pipeline = self.build_pipeline()
        if self._device_id is None:
            device = dai.Device(pipeline)
        else:
            device = dai.Device(pipeline, dai.DeviceInfo(self._device_id))
        try:
            if self._device_id is None:
                self._device_id = str(device.getMxId())
            queues = {
                name: device.getOutputQueue(name=name, maxSize=self._queue_size, blocking=False)
                for name in [*self._cameras, *self._sensors]
            }
            for name, camera in self._cameras.items():
                camera.attach(queues[name])
            for name, sensor in self._sensors.items():
                sensor.attach(queues[name])
            with self._lock:
                self._device = device
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
        if device is not None:
            device.close()
