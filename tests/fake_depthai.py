"""A stand-in for the parts of the depthai 3 API that ``omgrab.devices.oakd`` uses.

depthai 3 cannot create device nodes without an OAK attached, so the device I/O is faked here.
The fake must not drift from the real library: ``tests/test_capture_oakd.py`` imports the real
``depthai`` and checks that every class, method, enum member and parameter name defined in this
module exists there. Anything the backend uses that is not defined here fails with
AttributeError, so what the backend uses is a subset of what is checked.

Parameters declared positional-only (``/``) are those the real binding names ``arg0``.
"""

from __future__ import annotations

import collections
import datetime
import enum
from typing import Any

import numpy as np


class CameraBoardSocket(enum.Enum):
    CAM_A = 0
    CAM_B = 1
    CAM_C = 2


class IMUSensor(enum.Enum):
    ACCELEROMETER_RAW = 1
    GYROSCOPE_RAW = 2


class ImgFrame:
    class Type(enum.Enum):
        BGR888i = 1

    def __init__(self, data: np.ndarray, seconds: float) -> None:
        self.data, self.ts = data, datetime.timedelta(seconds=seconds)

    def getCvFrame(self) -> np.ndarray:
        return self.data

    def getFrame(self) -> np.ndarray:
        return self.data

    def getTimestamp(self) -> datetime.timedelta:
        return self.ts


class IMUReportAccelerometer:
    def __init__(self, x: float, y: float, z: float, seconds: float) -> None:
        self.x, self.y, self.z = x, y, z
        self.ts = datetime.timedelta(seconds=seconds)

    def getTimestamp(self) -> datetime.timedelta:
        return self.ts


class IMUReportGyroscope(IMUReportAccelerometer):
    pass


class IMUPacket:
    def __init__(self, accel: IMUReportAccelerometer, gyro: IMUReportGyroscope) -> None:
        self.acceleroMeter, self.gyroscope = accel, gyro


class IMUData:
    def __init__(self, packets: list[IMUPacket]) -> None:
        self.packets = packets


class MessageQueue:
    def __init__(self, maxSize: int, blocking: bool) -> None:
        self.max_size, self.blocking = maxSize, blocking
        self.items: collections.deque[Any] = collections.deque()

    def tryGet(self) -> Any:
        return self.items.popleft() if self.items else None


class Node:
    class Output:
        def __init__(self, node: Any, name: str) -> None:
            self.node, self.name = node, name
            self.queue: MessageQueue | None = None

        def createOutputQueue(self, maxSize: int = 16, blocking: bool = False) -> MessageQueue:
            self.queue = MessageQueue(maxSize, blocking)
            return self.queue

        def link(self, input: Any) -> None:
            self.node.pipeline.links.append((self, input))


class _FakeNode:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))


class _Camera(_FakeNode):
    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(pipeline)
        self.outputs: list[Node.Output] = []

    def build(self, boardSocket: CameraBoardSocket) -> _Camera:
        self.socket = boardSocket
        return self

    def requestOutput(
        self, size: tuple[int, int], type: Any = None, fps: float | None = None
    ) -> Node.Output:
        self._call("requestOutput", size, type=type, fps=fps)
        self.outputs.append(Node.Output(self, f"{self.socket.name}:{size[0]}x{size[1]}"))
        return self.outputs[-1]


class _StereoDepth(_FakeNode):
    class PresetMode(enum.Enum):
        DEFAULT = 2

    def build(self, left: Node.Output, right: Node.Output, presetMode: Any = None) -> Any:
        self.left_in, self.right_in, self.preset = left, right, presetMode
        self.depth = Node.Output(self, "depth")
        return self

    def setLeftRightCheck(self, enable: bool) -> None:
        self._call("setLeftRightCheck", enable)

    def setDepthAlign(self, camera: CameraBoardSocket) -> None:
        self._call("setDepthAlign", camera)

    def setOutputSize(self, width: int, height: int) -> None:
        self._call("setOutputSize", width, height)


class _IMU(_FakeNode):
    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(pipeline)
        self.out = Node.Output(self, "imu")

    def enableIMUSensor(self, sensors: list[IMUSensor], reportRate: int) -> None:
        self._call("enableIMUSensor", sensors, reportRate)

    def setBatchReportThreshold(self, batchReportThreshold: int) -> None:
        self._call("setBatchReportThreshold", batchReportThreshold)

    def setMaxBatchReports(self, maxBatchReports: int) -> None:
        self._call("setMaxBatchReports", maxBatchReports)


class node:
    Camera = _Camera
    StereoDepth = _StereoDepth
    IMU = _IMU


class Pipeline:
    last: Pipeline | None = None

    def __init__(self, defaultDevice: Device) -> None:
        self.device = defaultDevice
        self.nodes: list[Any] = []
        self.links: list[Any] = []
        self.running = False
        self.fail_start: BaseException | None = None
        Pipeline.last = self

    def create(self, node_class: type, /) -> Any:
        created = node_class(self)
        self.nodes.append(created)
        return created

    def start(self) -> None:
        if self.fail_start is not None:
            raise self.fail_start
        self.running = True

    def stop(self) -> None:
        self.running = False

    def isRunning(self) -> bool:
        return self.running


class DeviceInfo:
    def __init__(self, deviceIdOrName: str) -> None:
        self.device_id = deviceIdOrName

    def getDeviceId(self) -> str:
        return self.device_id


class CalibrationHandler:
    """Intrinsics of a 1280x800 CAM_A, scaled to the requested size."""

    def getCameraIntrinsics(
        self, cameraId: CameraBoardSocket, resizeWidth: int = -1, resizeHeight: int = -1
    ) -> list[list[float]]:
        assert cameraId is CameraBoardSocket.CAM_A
        sx = (resizeWidth if resizeWidth > 0 else 1280) / 1280
        sy = (resizeHeight if resizeHeight > 0 else 800) / 800
        return [[800.0 * sx, 0.0, 640.0 * sx], [0.0, 800.0 * sy, 400.0 * sy], [0.0, 0.0, 1.0]]

    def getDistortionCoefficients(self, cameraId: CameraBoardSocket) -> list[float]:
        return [0.1, -0.05, 0.0, 0.0, 0.01]


class Device:
    available: list[DeviceInfo] = []
    last: Device | None = None
    opened: list[Device] = []

    def __init__(self, deviceInfo: DeviceInfo | None = None) -> None:
        self.device_id = deviceInfo.getDeviceId() if deviceInfo is not None else "18443010D1"
        self.closed = False
        Device.last = self
        Device.opened.append(self)

    @staticmethod
    def getAllAvailableDevices() -> list[DeviceInfo]:
        return list(Device.available)

    def getDeviceId(self) -> str:
        return self.device_id

    def readCalibration(self) -> CalibrationHandler:
        return CalibrationHandler()

    def isClosed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def reset() -> None:
    """Forget devices and pipelines made by earlier tests."""
    Device.available = []
    Device.last = None
    Device.opened = []
    Pipeline.last = None


#: Real depthai names that differ from the fake's Python class names.
REAL_NAMES = {"node.Camera": "node.Camera", "node.StereoDepth": "node.StereoDepth"}
#: Fake-only helpers and test state, not part of the API.
FAKE_ONLY = frozenset({"reset", "REAL_NAMES", "FAKE_ONLY", "last", "available", "opened"})
