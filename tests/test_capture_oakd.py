"""OakDCaptureDevice against a fake ``depthai`` module (no library, no hardware needed)."""

from __future__ import annotations

import collections
import datetime
import types
from typing import Any

import numpy as np
import orjson
import pytest

from omgrab import cameras, devices, sensors
from omgrab.devices import oakd_messages

# -- a small stand-in for the parts of the depthai v2 API the device uses ----------------------


class _Port:
    def __init__(self, node: _Node, name: str) -> None:
        self.node, self.name = node, name

    def link(self, other: _Port) -> None:
        self.node.pipeline.links.append(
            ((self.node.kind, self.name), (other.node.kind, other.name))
        )


class _Node:
    PORTS = frozenset({"video", "out", "left", "right", "depth", "input"})

    def __init__(self, pipeline: _Pipeline, kind: str) -> None:
        self.pipeline, self.kind = pipeline, kind
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        if name in self.PORTS:
            return _Port(self, name)

        def call(*args: Any) -> None:
            self.calls.append((name, args))

        return call


class _Pipeline:
    def __init__(self) -> None:
        self.nodes: list[_Node] = []
        self.links: list[tuple[tuple[str, str], tuple[str, str]]] = []

    def create(self, node_class: type) -> _Node:
        node = _Node(self, node_class.__name__)
        self.nodes.append(node)
        return node

    def of(self, kind: str) -> list[_Node]:
        return [n for n in self.nodes if n.kind == kind]


class _Queue:
    def __init__(self) -> None:
        self.items: collections.deque[Any] = collections.deque()

    def tryGet(self) -> Any:
        return self.items.popleft() if self.items else None


class _Info:
    def __init__(self, mxid: str) -> None:
        self.mxid = mxid

    def getMxId(self) -> str:
        return self.mxid


class _Device:
    available: list[_Info] = []
    last: _Device | None = None

    def __init__(self, pipeline: _Pipeline, info: _Info | None = None) -> None:
        self.pipeline = pipeline
        self.mxid = info.mxid if info is not None else "18443010D1"
        self.queues: dict[str, _Queue] = {}
        self.queue_args: list[tuple[str, int, bool]] = []
        self.closed = False
        _Device.last = self

    @classmethod
    def getAllAvailableDevices(cls) -> list[_Info]:
        return list(cls.available)

    def getMxId(self) -> str:
        return self.mxid

    def getOutputQueue(self, name: str, maxSize: int, blocking: bool) -> _Queue:
        self.queue_args.append((name, maxSize, blocking))
        return self.queues.setdefault(name, _Queue())

    def isClosed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _fake_dai() -> types.SimpleNamespace:
    class ColorCamera:
        pass

    class MonoCamera:
        pass

    class StereoDepth:
        PresetMode = types.SimpleNamespace(HIGH_DENSITY="HIGH_DENSITY")

    class IMU:
        pass

    class XLinkOut:
        pass

    _Device.available = []
    _Device.last = None
    return types.SimpleNamespace(
        Pipeline=_Pipeline,
        Device=_Device,
        DeviceInfo=_Info,
        node=types.SimpleNamespace(
            ColorCamera=ColorCamera,
            MonoCamera=MonoCamera,
            StereoDepth=StereoDepth,
            IMU=IMU,
            XLinkOut=XLinkOut,
        ),
        CameraBoardSocket=types.SimpleNamespace(CAM_A="CAM_A", CAM_B="CAM_B", CAM_C="CAM_C"),
        ColorCameraProperties=types.SimpleNamespace(
            SensorResolution=types.SimpleNamespace(THE_800_P="800P", THE_1080_P="1080P")
        ),
        MonoCameraProperties=types.SimpleNamespace(
            SensorResolution=types.SimpleNamespace(THE_400_P="400P")
        ),
        IMUSensor=types.SimpleNamespace(ACCELEROMETER_RAW="ACC_RAW", GYROSCOPE_RAW="GYRO_RAW"),
    )


class _ImgFrame:
    def __init__(self, data: np.ndarray, seconds: float) -> None:
        self.data, self.ts = data, datetime.timedelta(seconds=seconds)

    def getCvFrame(self) -> np.ndarray:
        return self.data

    def getFrame(self) -> np.ndarray:
        return self.data

    def getTimestamp(self) -> datetime.timedelta:
        return self.ts


class _Report:
    def __init__(self, x: float, y: float, z: float, seconds: float) -> None:
        self.x, self.y, self.z = x, y, z
        self.ts = datetime.timedelta(seconds=seconds)

    def getTimestamp(self) -> datetime.timedelta:
        return self.ts


def _imu_data(start: float, count: int, rate: float = 100.0) -> types.SimpleNamespace:
    packets = [
        types.SimpleNamespace(
            acceleroMeter=_Report(0.1, 0.2, 9.8, start + i / rate),
            gyroscope=_Report(0.01, 0.02, 0.3, start + i / rate),
        )
        for i in range(count)
    ]
    return types.SimpleNamespace(packets=packets)


@pytest.fixture
def dai() -> types.SimpleNamespace:
    return _fake_dai()


# -- tests -------------------------------------------------------------------------------------


def test_pipeline_layout(dai, manual_clock) -> None:
    device = devices.OakDCaptureDevice(dai_module=dai, clock=manual_clock)
    pipeline = device.build_pipeline()
    (color,) = pipeline.of("ColorCamera")
    assert ("setVideoSize", (1280, 800)) in color.calls
    assert ("setBoardSocket", ("CAM_A",)) in color.calls
    assert ("setResolution", ("800P",)) in color.calls
    assert ("setFps", (25.0,)) in color.calls
    left, right = pipeline.of("MonoCamera")
    assert ("setBoardSocket", ("CAM_B",)) in left.calls
    assert ("setBoardSocket", ("CAM_C",)) in right.calls
    (stereo,) = pipeline.of("StereoDepth")
    assert ("setDepthAlign", ("CAM_A",)) in stereo.calls
    assert ("setOutputSize", (640, 400)) in stereo.calls
    (imu,) = pipeline.of("IMU")
    assert ("enableIMUSensor", (["ACC_RAW", "GYRO_RAW"], 100)) in imu.calls
    outs = pipeline.of("XLinkOut")
    assert sorted(c[1][0] for n in outs for c in n.calls if c[0] == "setStreamName") == [
        "depth",
        "imu",
        "rgb",
    ]
    assert (("ColorCamera", "video"), ("XLinkOut", "input")) in pipeline.links
    assert (("MonoCamera", "out"), ("StereoDepth", "left")) in pipeline.links
    assert (("MonoCamera", "out"), ("StereoDepth", "right")) in pipeline.links
    assert (("StereoDepth", "depth"), ("XLinkOut", "input")) in pipeline.links
    assert (("IMU", "out"), ("XLinkOut", "input")) in pipeline.links


def test_pipeline_without_depth_and_imu(dai, manual_clock) -> None:
    device = devices.OakDCaptureDevice(
        dai_module=dai,
        clock=manual_clock,
        depth=None,
        imu_rate_hz=None,
        color_resolution="THE_1080_P",
    )
    pipeline = device.build_pipeline()
    assert [n.kind for n in pipeline.nodes] == ["ColorCamera", "XLinkOut"]
    assert ("setResolution", ("1080P",)) in pipeline.nodes[0].calls
    assert set(device.cameras) == {"rgb"} and device.sensors == {}


def test_streams_convert_messages(dai, manual_clock) -> None:
    mono = manual_clock.source.monotonic()
    device = devices.OakDCaptureDevice(dai_module=dai, clock=manual_clock)
    assert isinstance(device, devices.CaptureDevice)
    assert device.device_type == devices.DeviceType.OAKD
    with device:
        fake = _Device.last
        assert fake is not None
        assert device.label == "oakd-18443010D1"
        assert sorted(fake.queue_args) == [
            ("depth", 8, False),
            ("imu", 8, False),
            ("rgb", 8, False),
        ]
        assert device.connected and not device.ready  # nothing delivered yet
        bgr = np.zeros((800, 1280, 3), np.uint8)
        bgr[..., 0] = 200  # blue in BGR
        fake.queues["rgb"].items.append(_ImgFrame(bgr, mono + 0.5))
        depth = np.full((400, 640), 1234, np.uint16)
        fake.queues["depth"].items.append(_ImgFrame(depth, mono + 0.52))
        fake.queues["imu"].items.append(types.SimpleNamespace(packets=[]))  # skipped
        fake.queues["imu"].items.append(_imu_data(mono + 0.4, 10))
        fake.queues["imu"].items.append(_imu_data(mono + 0.5, 10))

        rgb, rgb_ts = device.cameras["rgb"].get_next_frame(timeout_s=0.5)
        assert rgb.shape == (800, 1280, 3) and rgb[0, 0].tolist() == [0, 0, 200]
        assert rgb_ts == manual_clock.to_datetime(mono + 0.5)
        got_depth, depth_ts = device.cameras["depth"].get_next_frame(timeout_s=0.5)
        assert got_depth.dtype == np.uint16 and int(got_depth[0, 0]) == 1234
        assert depth_ts == manual_clock.to_datetime(mono + 0.52)
        payload, imu_ts = device.sensors["imu"].get_next_item(timeout_s=0.5)
        item = orjson.loads(payload)
        assert item["seq"] == 0 and item["rate_hz"] == 100.0
        assert imu_ts == manual_clock.to_datetime(mono + 0.4)
        assert datetime.datetime.fromisoformat(item["t0"]) == imu_ts
        assert [r["dt_ms"] for r in item["readings"]] == pytest.approx(
            [10.0 * i for i in range(10)]
        )
        assert item["readings"][0]["accel"] == [0.1, 0.2, 9.8]
        assert item["readings"][0]["gyro"] == [0.01, 0.02, 0.3]
        second, _ = device.sensors["imu"].get_next_item(timeout_s=0.5)
        assert orjson.loads(second)["seq"] == 1
        assert device.ready and device.wait_until_ready(0.0)
        preview = device.preview()
        assert preview is not None and preview[0] is rgb

        with pytest.raises(cameras.FrameUnavailableError, match=r"within 0\.02 s"):
            device.cameras["rgb"].get_next_frame(timeout_s=0.02)
        with pytest.raises(sensors.SensorDataUnavailableError, match=r"within 0\.02 s"):
            device.sensors["imu"].get_next_item(timeout_s=0.02)

        fake.closed = True  # XLink link lost (cable pulled)
        assert not device.connected and not device.ready
        with pytest.raises(cameras.FrameUnavailableError, match="not open"):
            device.cameras["rgb"].get_next_frame(timeout_s=0.02)
        fake.closed = False
    assert fake.closed  # closing the device closes the depthai Device
    assert not device.ready
    assert not device.cameras["rgb"].is_open


def test_connected_before_open_lists_devices(dai) -> None:
    device = devices.OakDCaptureDevice(dai_module=dai, device_id="ABC")
    assert not device.connected
    _Device.available = [_Info("XYZ")]
    assert not device.connected
    _Device.available = [_Info("XYZ"), _Info("ABC")]
    assert device.connected
    assert devices.OakDCaptureDevice(dai_module=dai).connected  # any device will do
    with device:
        assert _Device.last is not None and _Device.last.mxid == "ABC"
        assert device.label == "oakd-ABC"


def test_streams_need_an_open_device(dai) -> None:
    device = devices.OakDCaptureDevice(dai_module=dai)
    with pytest.raises(cameras.FrameUnavailableError, match="open the device first"):
        device.cameras["rgb"].open()


def test_message_conversion_validates(manual_clock) -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        oakd_messages.rgb_frame(_ImgFrame(np.zeros((4, 4), np.uint8), 1.0), manual_clock)
    with pytest.raises(ValueError, match="HxW uint16"):
        oakd_messages.depth_frame(_ImgFrame(np.zeros((4, 4), np.uint8), 1.0), manual_clock)

    class _Bad:
        def getTimestamp(self) -> float:
            return 1.0

    with pytest.raises(TypeError, match="timedelta"):
        oakd_messages.message_time(_Bad(), manual_clock)
    assert oakd_messages.imu_item(types.SimpleNamespace(packets=[]), manual_clock, 0, 100) is None
