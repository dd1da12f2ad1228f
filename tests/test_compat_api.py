"""omgrab 0.1.2 code patterns work unchanged here (see docs/compat.md).

Each test is written the way a 0.1.2 user wrote their code: published import paths,
camera/sensor subclasses implementing ``get_next_frame``/``setup``/``close``, encoder queues
taken before ``start()``, a metrics provider without Wi-Fi methods.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests import fixtures_recording as fx

UTC = datetime.UTC


# -- cameras and sensors ------------------------------------------------------------------


def test_published_camera_subclass_instantiates_and_records(tmp_path: pathlib.Path) -> None:
    from omgrab.cameras import cameras  # 0.1.2 path

    class StripeCamera(cameras.Camera[cameras.Frame]):
        def __init__(self, config: cameras.CameraConfig) -> None:
            super().__init__(config, enforce_frame_timing=False)
            self.events: list[str] = []
            self.index = 0

        def setup(self) -> None:
            self.events.append("setup")

        def close(self) -> None:
            self.events.append("close")

        def get_next_frame(
            self, timeout_s: float | None = None
        ) -> tuple[np.ndarray, datetime.datetime]:
            self._maybe_wait_remainder_of_frame()
            self.index += 1
            return fx.rgb_frame(self.index), fx.timestamp_at(self.index * 40)

    cam = StripeCamera(cameras.CameraConfig(fps=25, width=64, height=48))
    assert isinstance(cam, cameras.Camera)
    with cam:
        frames = [cam.get_next_frame(timeout_s=1.0) for _ in range(3)]
    assert cam.events == ["setup", "close"]
    assert [ts for _, ts in frames] == [fx.timestamp_at(i * 40) for i in (1, 2, 3)]
    assert issubclass(cameras.FrameUnavailableError, RuntimeError)


def test_camera_implementing_nothing_is_refused() -> None:
    from omgrab.cameras import cameras

    class Empty(cameras.Camera):
        pass

    with pytest.raises(TypeError, match="must implement _read_frame or get_next_frame"):
        Empty(cameras.CameraConfig(fps=25, width=64, height=48))


def test_published_sensor_subclass_without_super_init_works() -> None:
    from omgrab.sensors import sensor

    class Counter(sensor.Sensor):
        def __init__(self) -> None:  # 0.1.2's Sensor had no __init__ to call
            self.opened = False
            self.n = 0

        def setup(self) -> None:
            self.opened = True

        def close(self) -> None:
            self.opened = False

        def get_next_item(self, timeout_s: float | None = None) -> tuple[bytes, datetime.datetime]:
            if not self.opened:
                raise sensor.SensorDataUnavailableError("closed")
            self.n += 1
            return b"%d" % self.n, datetime.datetime.now(UTC)

    src = Counter()
    with src as entered:
        assert entered is src and src.opened
        assert src.get_next_item()[0] == b"1"
    assert not src.opened
    assert issubclass(sensor.SensorDataUnavailableError, RuntimeError)


def test_published_queue_readers_keep_argument_order_and_errors() -> None:
    from omgrab.cameras import cameras, queue_reader_camera
    from omgrab.sensors import queue_reader_sensor

    frames: queue.Queue = queue.Queue()
    cam = queue_reader_camera.QueueReaderCamera(
        cameras.CameraConfig(fps=25, width=4, height=2), frames
    )
    frames.put((np.zeros((4, 8, 3), np.uint8), fx.timestamp_at(0)))
    frame, _ = cam.get_next_frame(timeout_s=1.0)  # readable without opening; resized
    assert frame.shape == (2, 4, 3)
    with pytest.raises(cameras.FrameUnavailableError, match="Queue empty") as info:
        cam.get_next_frame(timeout_s=0)
    assert isinstance(info.value.__cause__, queue.Empty)
    items: queue.Queue = queue.Queue()
    src = queue_reader_sensor.QueueReaderSensor(items)
    with pytest.raises(RuntimeError, match="Queue empty"):
        src.get_next_item(timeout_s=0)


# -- writer -------------------------------------------------------------------------------


def test_encoder_queue_before_start_keeps_items_and_writes_into_output_directory(
    tmp_path: pathlib.Path,
) -> None:
    from omgrab.recording import chunked_writer, py_av_writer

    out = tmp_path / "my_recording"
    writer = chunked_writer.ChunkedWriter(
        name="my_recording", output_directory=out, stream_configs=fx.small_video_configs()
    )
    q = writer.get_encoder_queue("rgb")
    # Items put before start() are kept and written; the origin moves back to cover them.
    early = datetime.datetime.now(UTC) - datetime.timedelta(seconds=5)
    q.put((fx.rgb_frame(0), early), block=False)
    with writer:
        assert writer.get_encoder_queue("rgb") is q
        for i in range(1, 5):
            q.put((fx.rgb_frame(i), early + datetime.timedelta(milliseconds=40 * i)), block=False)
    assert writer.origin == early
    assert writer.directory == out
    assert writer.stats["rgb"].frames_written == 5
    assert sorted(p.name for p in (out / "rgb").iterdir()) == ["00001.mkv"]
    merged = py_av_writer.merge_recording_chunks(out, tmp_path / "x.mkv")
    assert merged == tmp_path / "x.mkv"
    assert fx.ffprobe_json(merged)["streams"][0]["nb_read_packets"] == "5"
    assert not out.exists()  # 0.1.2 removes the merged directory (here: after verification)


def test_pre_start_queue_is_bounded_like_a_queue() -> None:
    from omgrab.recording import pending_queue

    q = pending_queue.PendingQueue("rgb", maxsize=2)
    q.put((b"a", fx.timestamp_at(0)))
    q.put((b"b", fx.timestamp_at(1)))
    with pytest.raises(queue.Full):
        q.put((b"c", fx.timestamp_at(2)), block=False)
    assert q.full() and q.qsize() == 2
    assert q.get()[0] == b"a"  # taken back before start


def test_untyped_stream_is_refused_when_the_writer_is_built(tmp_path: pathlib.Path) -> None:
    from omgrab.recording import stream_configs, writer

    config = stream_configs.VideoStreamConfig(width=64, height=48, fps=25)  # 0.1.2: fine here
    with pytest.raises(ValueError, match="type"):
        writer.ChunkedWriter("r", tmp_path, {"rgb": config})


# -- status -------------------------------------------------------------------------------


class _MetricsWithoutWifi:
    def get_storage_info(self, path: pathlib.Path) -> object:
        from omgrab.runtime import device_status as ds

        return ds.StorageInfo(100, 50, 50, 50.0)

    def get_cpu_info(self) -> object:
        from omgrab.runtime import device_status as ds

        return ds.CPUInfo(40.0, 5.0, [5.0])

    def get_memory_info(self) -> object:
        from omgrab.runtime import device_status as ds

        return ds.MemoryInfo(100, 50, 50, 50.0)


class _MetricsWith012Wifi(_MetricsWithoutWifi):
    def get_wifi_info(self) -> tuple[str | None, int | None]:
        return "lab", -61


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [(_MetricsWithoutWifi(), (None, None)), (_MetricsWith012Wifi(), ("lab", -61))],
)
def test_metrics_provider_without_wifi_methods_reports_unknown(
    tmp_path: pathlib.Path, metrics: object, expected: tuple[object, object]
) -> None:
    from omgrab.runtime import device_status as ds

    manager = ds.DeviceStatusManager("rig", "1", tmp_path, metrics)  # type: ignore[arg-type]
    network = manager.get_status().network
    assert (network.wifi_ssid, network.wifi_signal_strength) == expected


def test_published_import_paths_resolve_to_this_package() -> None:
    from omgrab import cameras as omgrab_cameras
    from omgrab import recording, utils
    from omgrab.cameras import base as camera_base
    from omgrab.cameras import cameras
    from omgrab.recording import chunked_writer, manifest, py_av_writer, stream_configs
    from omgrab.sensors import base as sensor_base
    from omgrab.sensors import sensor

    assert cameras.Camera is camera_base.Camera
    assert sensor.Sensor is sensor_base.Sensor
    assert issubclass(chunked_writer.ChunkedWriter, recording.ChunkedWriter)
    assert stream_configs.VideoStreamConfig is recording.VideoStreamConfig
    assert py_av_writer.merge_stream_files is recording.merge_stream_files
    assert callable(utils.merge_orphaned_chunks)
    assert manifest.build_manifest("r", None, None, None, [], {}, {}, "r.mkv").recovered is False
    from omgrab.cameras import oakd_camera, queue_reader_camera

    assert issubclass(oakd_camera.OakDRGBCamera, queue_reader_camera.QueueReaderCamera)
    assert omgrab_cameras.OakDDepthCamera is oakd_camera.OakDDepthCamera


def test_runtime_package_exports_the_published_names() -> None:
    import omgrab.runtime as runtime
    from omgrab.runtime import network_monitor, recording_manager

    assert runtime.NetworkMonitorConfig is network_monitor.Config
    assert runtime.RecordingManager is recording_manager.RecordingManager
    assert set(runtime.__all__) >= {"DeviceStatusManager", "RecordingSession", "ButtonConfig"}
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = runtime.Nope  # type: ignore[attr-defined]


def _flat_chunk(path: pathlib.Path, first_ms: int, frames: int) -> None:
    """Write a 0.1.2-layout chunk: one MKV holding an H.264 and an ASS track."""
    import av

    from omgrab.recording import py_av_writer

    origin = 1_700_000_000.0
    with av.open(str(path), "w", format="matroska") as container:
        video = py_av_writer.VideoStreamEncoder(
            container,
            64,
            48,
            25,
            "libx264",
            500_000,
            "rgb24",
            "yuv420p",
            {"preset": "ultrafast", "bf": "0"},
            origin,
            {"type": "rgb"},
        )
        data = py_av_writer.DataStreamEncoder(
            container, origin, metadata={"type": "imu", "hz": 100}
        )
        for i in range(frames):
            t = origin + (first_ms + 40 * i) / 1000
            for packet in [*video.encode(fx.rgb_frame(i, 48, 64), t), *data.encode(b"{}", t)]:
                container.mux(packet)
        for packet in video.flush():
            container.mux(packet)


def test_flat_012_recording_merges_and_only_merged_chunks_are_removed(
    tmp_path: pathlib.Path,
) -> None:
    from omgrab.recording import flat_chunks
    from omgrab.utils import merge

    spool, output = tmp_path / "spool", tmp_path / "output"
    rec = spool / "rec-012"
    rec.mkdir(parents=True)
    _flat_chunk(rec / "00001.mkv", 0, 5)
    _flat_chunk(rec / "00002.mkv", 200, 5)
    (rec / "00003.mkv.tmp").write_bytes(b"crashed mid-write")
    (rec / "notes.txt").write_text("keep me")
    merge.merge_orphaned_chunks(spool, output)
    merged = output / "rec-012.mkv"
    assert flat_chunks.packet_counts(merged) == [10, 10]
    doc = json.loads((output / "rec-012.json").read_text())
    assert doc["recovered"] is True and doc["output_file"] == "rec-012.mkv"
    # The chunks went into the merged file; everything else is kept.
    assert sorted(p.name for p in rec.iterdir()) == ["notes.txt"]
    assert (
        output / "incomplete" / "rec-012" / "00003.mkv.tmp"
    ).read_bytes() == b"crashed mid-write"


def test_merge_stream_files_keeps_parts_when_the_merge_fails(tmp_path: pathlib.Path) -> None:
    from omgrab.recording import py_av_writer

    good = tmp_path / "a.rgb.mkv.part"
    _flat_chunk(good, 0, 3)
    broken = tmp_path / "b.depth.mkv.part"
    broken.write_bytes(b"not a matroska file")
    with pytest.raises(RuntimeError, match="ffmpeg failed"):
        py_av_writer.merge_stream_files([good, broken], tmp_path / "out.mkv")
    assert good.exists() and broken.exists()
    assert not (tmp_path / "out.mkv").exists() and not (tmp_path / "out.mkv.tmp").exists()


def test_on_error_gets_the_stream_name_when_it_takes_one_argument(
    writer_factory: Callable[..., Any],
) -> None:
    names: list[str | None] = []
    called = threading.Event()

    def on_error(stream_name: str | None) -> None:  # omgrab 0.1.2's signature
        names.append(stream_name)
        called.set()

    writer = writer_factory(on_error=on_error)
    with writer:
        writer.get_encoder_queue("depth").put((np.zeros((2, 2), np.float32), fx.timestamp_at(0)))
        assert called.wait(10)
    assert names == ["depth"]


def test_devices_satisfy_the_published_capture_device_protocol() -> None:
    from omgrab import testing
    from omgrab.devices import SimulatedCaptureDevice, capture_device, oakd_device_type

    assert isinstance(SimulatedCaptureDevice("sim"), capture_device.CaptureDevice)
    assert isinstance(testing.FakeCaptureDevice(), capture_device.CaptureDevice)
    assert not isinstance(object(), capture_device.CaptureDevice)
    assert issubclass(capture_device.PreviewUnavailableError, RuntimeError)
    parse = oakd_device_type.parse_device_type
    assert parse("OAK-D-PRO-W-97") is oakd_device_type.OakDDeviceType.OAKD_PRO_WIDE
    assert parse("oak-d-lite") is oakd_device_type.OakDDeviceType.OAKD_LITE
    with pytest.raises(ValueError, match="'OAK-1'"):
        parse("OAK-1")


def test_bitrate_zero_leaves_rate_control_to_the_codec(tmp_path: pathlib.Path) -> None:
    import dataclasses

    from omgrab.recording import chunked_writer

    with pytest.raises(ValueError, match="bitrate"):
        chunked_writer.VideoStreamConfig(width=64, height=48, fps=10, bitrate=-1)
    config = dataclasses.replace(fx.small_video_configs()["rgb"], bitrate=0)
    out = tmp_path / "rec"
    writer = chunked_writer.ChunkedWriter("rec", out, {"rgb": config})
    with writer:
        start = datetime.datetime.now(UTC)  # after start(): no frame precedes the origin
        q = writer.get_encoder_queue("rgb")
        for i in range(5):
            q.put((fx.rgb_frame(i), start + datetime.timedelta(milliseconds=100 * i)))
    assert writer.stats["rgb"].frames_written == 5
    (chunk,) = sorted((out / "rgb").iterdir())
    assert fx.ffprobe_json(chunk)["streams"][0]["nb_read_packets"] == "5"


def test_is_data_stream_names_only_sensor_streams(tmp_path: pathlib.Path) -> None:
    from omgrab.recording import chunked_writer

    writer = chunked_writer.ChunkedWriter(
        "rec",
        tmp_path / "rec",
        fx.small_video_configs(),
        sensor_stream_configs=fx.small_data_configs(),
    )
    (data_name,) = fx.small_data_configs()
    assert writer.is_data_stream(data_name)
    assert not writer.is_data_stream("rgb")
    assert not writer.is_data_stream("no-such-stream")
