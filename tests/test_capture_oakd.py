"""OakDCaptureDevice on depthai 3: the pipeline, the streams and the calibration against a fake
depthai (no device here), and the fake checked against the real ``depthai`` package."""

from __future__ import annotations

import datetime
import enum
import inspect
import json
import re
import types
from typing import Any

import numpy as np
import orjson
import pytest

from omgrab import cameras, devices, sensors
from omgrab.devices import oakd, oakd_messages
from omgrab.recording import capture_gaps
from tests import fake_depthai as fake

# -- the fake against the real library ---------------------------------------------------------

# Data attributes (pybind properties) the backend reads, per class of the fake.
DATA_ATTRIBUTES = {
    "IMUData": ["packets"],
    "IMUPacket": ["acceleroMeter", "gyroscope"],
    "IMUReportAccelerometer": ["x", "y", "z"],
    "IMUReportGyroscope": ["x", "y", "z"],
    "node.StereoDepth": ["depth"],
    "node.IMU": ["out"],
}
# Classes the backend constructs (their constructor's parameters are checked too).
CONSTRUCTED = {"Pipeline", "Device", "DeviceInfo"}


def _overload_params(doc: str, name: str) -> list[list[str]]:
    """Parameter names of each overload in a pybind11 docstring (``self`` dropped)."""
    overloads = []
    for line in doc.splitlines():
        match = re.match(rf"\s*(?:\d+\.\s*)?{re.escape(name)}\((.*)\)", line)
        if match:
            params = re.findall(r"(\w+): ", match.group(1))
            overloads.append([p for p in params if p != "self"])
    return overloads


def _is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(n == h for h in it) for n in needle)


def _fake_api() -> list[tuple[str, Any]]:
    """(dotted real name, fake object) for every class, method and enum member of the fake."""
    entries: list[tuple[str, Any]] = []

    def walk(prefix: str, cls: type) -> None:
        entries.append((prefix, cls))
        if issubclass(cls, enum.Enum):
            entries.extend((f"{prefix}.{m}", cls[m]) for m in cls.__members__)
            return
        for attr, value in vars(cls).items():
            if attr.startswith("_") and not (attr == "__init__" and prefix in CONSTRUCTED):
                continue
            if attr in fake.FAKE_ONLY:
                continue
            if inspect.isclass(value):
                walk(f"{prefix}.{attr}", value)
            elif callable(value) or isinstance(value, staticmethod):
                entries.append((f"{prefix}.{attr}", value))
        for attr in DATA_ATTRIBUTES.get(prefix, []):
            entries.append((f"{prefix}.{attr}", None))

    for name, value in vars(fake).items():
        if name.startswith("_") or name in fake.FAKE_ONLY or not inspect.isclass(value):
            continue
        if value.__module__ != fake.__name__:
            continue
        if name == "node":
            for sub, cls in vars(value).items():
                if not sub.startswith("_"):
                    walk(f"node.{sub}", cls)
        else:
            walk(name, value)
    return entries


def test_fake_depthai_matches_the_real_depthai_3_api() -> None:
    dai = pytest.importorskip("depthai", reason="no depthai wheel installs on this machine")
    major = int(str(dai.__version__).split(".")[0])
    assert major == 3, f"the backend targets depthai 3, found {dai.__version__}"
    checked = 0
    for dotted, fake_obj in _fake_api():
        real: Any = dai
        for part in dotted.split("."):
            assert hasattr(real, part), f"depthai {dai.__version__} has no {dotted}"
            real = getattr(real, part)
        checked += 1
        if fake_obj is None or inspect.isclass(fake_obj) or isinstance(fake_obj, enum.Enum):
            continue
        function = fake_obj.__func__ if isinstance(fake_obj, staticmethod) else fake_obj
        params = [
            p.name
            for p in inspect.signature(function).parameters.values()
            if p.name != "self" and p.kind is not inspect.Parameter.POSITIONAL_ONLY
        ]
        method = dotted.rsplit(".", 1)[-1]
        overloads = _overload_params(real.__doc__ or "", method)
        assert overloads, f"no signature in the docstring of depthai {dotted}"
        assert any(_is_subsequence(params, o) for o in overloads), (
            f"depthai {dotted} takes none of {params} in this order: {overloads}"
        )
    assert checked > 40


def test_the_fake_refuses_what_it_does_not_define() -> None:
    # The backend can only use what the check above covers.
    with pytest.raises(AttributeError):
        fake.node.StereoDepth.setSubpixel  # type: ignore[attr-defined]  # noqa: B018


# -- the backend against the fake --------------------------------------------------------------


@pytest.fixture
def dai() -> types.ModuleType:
    fake.reset()
    return fake  # type: ignore[return-value]


def test_pipeline_layout(dai: Any, manual_clock: Any) -> None:
    device = oakd.OakDCaptureDevice(dai_module=dai, clock=manual_clock)
    pipeline, outputs = device.build_pipeline(fake.Device())
    color, left, right, stereo, imu = pipeline.nodes
    assert (color.socket, left.socket, right.socket) == (
        fake.CameraBoardSocket.CAM_A,
        fake.CameraBoardSocket.CAM_B,
        fake.CameraBoardSocket.CAM_C,
    )
    assert color.calls == [
        ("requestOutput", ((1280, 800),), {"type": fake.ImgFrame.Type.BGR888i, "fps": 25.0})
    ]
    assert left.calls == [("requestOutput", ((640, 400),), {"type": None, "fps": 25.0})]
    assert stereo.left_in.node is left and stereo.right_in.node is right
    assert stereo.preset is fake.node.StereoDepth.PresetMode.DEFAULT
    assert ("setDepthAlign", (fake.CameraBoardSocket.CAM_A,), {}) in stereo.calls
    assert ("setOutputSize", (640, 400), {}) in stereo.calls
    assert ("setLeftRightCheck", (True,), {}) in stereo.calls
    sensors_enabled = [fake.IMUSensor.ACCELEROMETER_RAW, fake.IMUSensor.GYROSCOPE_RAW]
    assert ("enableIMUSensor", (sensors_enabled, 100), {}) in imu.calls
    assert outputs["depth"] is stereo.depth and outputs["imu"] is imu.out
    assert outputs["rgb"].node is color


def test_pipeline_without_depth_and_imu(dai: Any, manual_clock: Any) -> None:
    device = oakd.OakDCaptureDevice(
        dai_module=dai, clock=manual_clock, depth=None, imu_rate_hz=None
    )
    pipeline, outputs = device.build_pipeline(fake.Device())
    assert [type(n).__name__ for n in pipeline.nodes] == ["_Camera"]
    assert set(outputs) == {"rgb"}
    assert set(device.cameras) == {"rgb"} and device.sensors == {}


def _imu_data(start: float, count: int, rate: float = 100.0) -> fake.IMUData:
    return fake.IMUData(
        [
            fake.IMUPacket(
                fake.IMUReportAccelerometer(0.1, 0.2, 9.8, start + i / rate),
                fake.IMUReportGyroscope(0.01, 0.02, 0.3, start + i / rate),
            )
            for i in range(count)
        ]
    )


def test_streams_convert_messages_on_the_one_clock(dai: Any, manual_clock: Any) -> None:
    mono = manual_clock.source.monotonic()
    device = oakd.OakDCaptureDevice(dai_module=dai, clock=manual_clock)
    assert isinstance(device, devices.CaptureDevice)
    assert device.device_type == devices.DeviceType.OAKD
    with device:
        pipeline = fake.Pipeline.last
        assert pipeline is not None and pipeline.running
        assert device.label == "oakd-18443010D1"
        color, _, _, stereo, imu = pipeline.nodes
        rgb_q, depth_q, imu_q = color.outputs[0].queue, stereo.depth.queue, imu.out.queue
        assert (rgb_q.max_size, rgb_q.blocking) == (8, False)
        assert device.connected and not device.ready  # nothing delivered yet
        bgr = np.zeros((800, 1280, 3), np.uint8)
        bgr[..., 0] = 200  # blue in BGR
        rgb_q.items.append(fake.ImgFrame(bgr, mono + 0.5))
        depth_q.items.append(fake.ImgFrame(np.full((400, 640), 1234, np.uint16), mono + 0.52))
        imu_q.items.append(fake.IMUData([]))  # skipped
        imu_q.items.append(_imu_data(mono + 0.4, 10))
        imu_q.items.append(_imu_data(mono + 0.5, 10))

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
        second, _ = device.sensors["imu"].get_next_item(timeout_s=0.5)
        assert orjson.loads(second)["seq"] == 1
        assert device.ready and device.wait_until_ready(0.0)
        preview = device.preview()
        assert preview is not None and preview[0] is rgb

        with pytest.raises(cameras.FrameUnavailableError, match=r"within 0\.02 s"):
            device.cameras["rgb"].get_next_frame(timeout_s=0.02)
        with pytest.raises(sensors.SensorDataUnavailableError, match=r"within 0\.02 s"):
            device.sensors["imu"].get_next_item(timeout_s=0.02)

        fake_device = fake.Device.opened[0]
        fake_device.closed = True  # XLink link lost (cable pulled)
        assert not device.connected and not device.ready
        with pytest.raises(cameras.FrameUnavailableError, match="not open"):
            device.cameras["rgb"].get_next_frame(timeout_s=0.02)
        fake_device.closed = False
    assert fake_device.closed and not pipeline.running  # close stops and closes
    assert not device.cameras["rgb"].is_open


def test_failed_start_stops_and_closes_everything(dai: Any, manual_clock: Any) -> None:
    original = fake.Pipeline.start

    def failing_start(self: fake.Pipeline) -> None:
        raise RuntimeError("X_LINK_ERROR")

    fake.Pipeline.start = failing_start  # type: ignore[method-assign]
    try:
        device = oakd.OakDCaptureDevice(dai_module=dai, clock=manual_clock)
        with pytest.raises(RuntimeError, match="X_LINK_ERROR"):
            device.open()
    finally:
        fake.Pipeline.start = original  # type: ignore[method-assign]
    assert all(d.closed for d in fake.Device.opened)
    assert not device.connected


def test_connected_before_open_lists_devices(dai: Any) -> None:
    device = oakd.OakDCaptureDevice(dai_module=dai, device_id="ABC")
    assert not device.connected
    fake.Device.available = [fake.DeviceInfo("XYZ")]
    assert not device.connected
    fake.Device.available = [fake.DeviceInfo("XYZ"), fake.DeviceInfo("ABC")]
    assert device.connected
    assert oakd.OakDCaptureDevice(dai_module=dai).connected  # any device will do
    with device:
        assert fake.Device.last is not None and fake.Device.last.device_id == "ABC"
        assert device.label == "oakd-ABC"


def test_intrinsics_from_the_device_calibration_at_each_stream_size(dai: Any) -> None:
    device = oakd.OakDCaptureDevice(dai_module=dai)
    intrinsics = device.intrinsics()  # not open: connects briefly, then closes
    assert fake.Device.opened and all(d.closed for d in fake.Device.opened)
    assert intrinsics["rgb"] == {
        "fx": 800.0,
        "fy": 800.0,
        "cx": 640.0,
        "cy": 400.0,
        "width": 1280,
        "height": 800,
        "distortion": [0.1, -0.05, 0.0, 0.0, 0.01],
    }
    # Depth is aligned to CAM_A: CAM_A's intrinsics scaled to the depth size.
    assert (intrinsics["depth"]["fx"], intrinsics["depth"]["cx"]) == (400.0, 320.0)
    assert json.loads(json.dumps(intrinsics)) == intrinsics


def test_streams_need_an_open_device(dai: Any) -> None:
    device = oakd.OakDCaptureDevice(dai_module=dai)
    with pytest.raises(cameras.FrameUnavailableError, match="open the device first"):
        device.cameras["rgb"].open()


def test_message_conversion_validates(manual_clock: Any) -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        oakd_messages.rgb_frame(fake.ImgFrame(np.zeros((4, 4), np.uint8), 1.0), manual_clock)
    with pytest.raises(ValueError, match="HxW uint16"):
        oakd_messages.depth_frame(fake.ImgFrame(np.zeros((4, 4), np.uint8), 1.0), manual_clock)

    class _Bad:
        def getTimestamp(self) -> float:
            return 1.0

    with pytest.raises(TypeError, match="timedelta"):
        oakd_messages.message_time(_Bad(), manual_clock)
    assert oakd_messages.imu_item(fake.IMUData([]), manual_clock, 0, 100) is None


def test_device_app_puts_the_oakd_calibration_into_the_stream_tags(dai: Any, tmp_path: Any) -> None:
    from omgrab.app import config as config_mod
    from omgrab.app import device_app

    device = oakd.OakDCaptureDevice(dai_module=dai)
    config = config_mod.AppConfig(data_dir=tmp_path, perception=False)
    app = device_app.DeviceApp(config, device=device)
    try:
        configs = app.recorder._stream_configs  # what each stream's writer is started with
        rgb = json.loads(configs["rgb"].metadata["intrinsics"])
        depth = json.loads(configs["depth"].metadata["intrinsics"])
    finally:
        app.stop()
    assert (rgb["fx"], rgb["width"], depth["fx"], depth["width"]) == (800.0, 1280, 400.0, 640)


def test_camera_exposes_the_device_sequence_number(dai: Any, manual_clock: Any) -> None:
    """Capture gap tracking uses it (omgrab.recording.capture_gaps)."""

    class Numbered(fake.ImgFrame):
        def __init__(self, data: np.ndarray, seconds: float, seq: int) -> None:
            super().__init__(data, seconds)
            self.seq = seq

        def getSequenceNum(self) -> int:
            return self.seq

    mono = manual_clock.source.monotonic()
    device = oakd.OakDCaptureDevice(dai_module=dai, clock=manual_clock)
    with device:
        pipeline = fake.Pipeline.last
        assert pipeline is not None
        rgb_q = pipeline.nodes[0].outputs[0].queue
        camera = device.cameras["rgb"]
        bgr = np.zeros((800, 1280, 3), np.uint8)
        rgb_q.items.append(Numbered(bgr, mono + 0.5, 41))
        rgb_q.items.append(fake.ImgFrame(bgr, mono + 0.54))
        camera.get_next_frame(timeout_s=0.5)
        assert capture_gaps.sequence_number(camera) == 41
        camera.get_next_frame(timeout_s=0.5)
        assert capture_gaps.sequence_number(camera) is None
