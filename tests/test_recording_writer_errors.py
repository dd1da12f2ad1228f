"""ChunkedWriter error paths: invalid items, a dying encoder process, bad configuration."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from omgrab import recording
from omgrab.recording import encoder_options
from tests import fixtures_recording as fx


def test_invalid_frames_are_counted_reported_once_and_the_stream_goes_on(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    calls: list[str] = []
    called = threading.Event()

    def on_error() -> None:
        calls.append(threading.current_thread().name)
        called.set()

    writer = writer_factory(on_error=on_error)
    writer.start()
    q_rgb = writer.get_encoder_queue("rgb")
    q_depth = writer.get_encoder_queue("depth")
    q_imu = writer.get_encoder_queue("imu")
    q_rgb.put((fx.rgb_frame(0), fx.timestamp_at(0)))
    q_rgb.put((np.zeros((10, 10, 3), np.uint8), fx.timestamp_at(40)))  # wrong shape
    q_depth.put((fx.depth_frame(0).astype(np.float32), fx.timestamp_at(0)))  # wrong dtype
    q_imu.put(("not bytes", fx.timestamp_at(0)))  # wrong type
    q_imu.put((b"x" * 70_000, fx.timestamp_at(5)))  # too large
    q_rgb.put((fx.rgb_frame(1), datetime_naive()))  # naive timestamp
    q_rgb.put("not a tuple")
    q_rgb.put((fx.rgb_frame(2), fx.timestamp_at(80)))
    q_depth.put((fx.depth_frame(1), fx.timestamp_at(40)))
    q_imu.put((b"{}", fx.timestamp_at(40)))
    writer.stop()
    assert called.wait(10)
    assert len(calls) == 1
    assert not writer.healthy
    stats = writer.stats
    assert stats["rgb"].frames_invalid == 3
    assert stats["depth"].frames_invalid == 1
    assert stats["imu"].frames_invalid == 2
    assert "shape (48, 64, 3)" in (stats["rgb"].error or "")
    assert "got shape (10, 10, 3)" in (stats["rgb"].error or "")
    assert "dtype uint16" in (stats["depth"].error or "")
    assert "must be bytes" in (stats["imu"].error or "")
    assert len(writer.errors) == 3  # the first invalid item of each stream
    rgb = [p.pts for f in fx.chunk_files(writer.directory, "rgb") for p in fx.demux_packets(f)]
    assert rgb == [0, 80]
    assert stats["depth"].frames_written == 1
    assert stats["imu"].frames_written == 1


def datetime_naive() -> object:
    import datetime

    return datetime.datetime(2026, 1, 1)


def test_killed_encoder_process_reported_once_others_keep_recording(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    reported = threading.Event()
    calls: list[None] = []

    def on_error() -> None:
        calls.append(None)
        reported.set()

    writer = writer_factory(on_error=on_error, chunk_length_s=0.5, put_timeout_s=5.0)
    writer.start()
    queues = {s: writer.get_encoder_queue(s) for s in ("rgb", "depth", "imu")}
    for i in range(30):
        ts = fx.timestamp_at(i * 40)
        queues["rgb"].put((fx.rgb_frame(i), ts))
        queues["depth"].put((fx.depth_frame(i), ts))
        queues["imu"].put((fx.imu_payload(i), ts))
    deadline = time.monotonic() + 10
    while sum(c.closed for c in writer.stats["rgb"].chunks) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    pid = writer.worker_pid("rgb")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert reported.wait(10), "on_error was not called for a killed encoder process"
    started = time.monotonic()
    for i in range(30, 60):  # the dead stream drops at once; the others keep recording
        ts = fx.timestamp_at(i * 40)
        queues["rgb"].put((fx.rgb_frame(i), ts))
        queues["depth"].put((fx.depth_frame(i), ts))
        queues["imu"].put((fx.imu_payload(i), ts))
    assert time.monotonic() - started < 3.0, "puts to a dead stream must not wait for slots"
    started = time.monotonic()
    writer.stop()
    assert time.monotonic() - started < 10.0
    assert len(calls) == 1
    assert not writer.healthy
    stats = writer.stats
    assert "exited unexpectedly" in (stats["rgb"].error or "")
    assert stats["rgb"].frames_dropped == 30
    assert stats["depth"].healthy and stats["imu"].healthy
    for stream in ("depth", "imu"):
        pts = [p.pts for f in fx.chunk_files(writer.directory, stream) for p in fx.demux_packets(f)]
        assert pts == [i * 40 for i in range(60)]
    # The killed stream's files stay readable packet by packet up to the kill.
    rgb = [p.pts for f in fx.chunk_files(writer.directory, "rgb") for p in fx.demux_packets(f)]
    assert rgb == [i * 40 for i in range(len(rgb))]
    assert len(rgb) >= 25  # at least the closed chunks
    assert (writer.directory / "COMPLETE").exists()


def test_bad_encoder_options_fail_start_with_a_clear_error(tmp_path: pathlib.Path) -> None:
    configs = fx.small_video_configs()
    configs["rgb"].stream_options["preset"] = "no-such-preset"
    writer = recording.ChunkedWriter("rec", tmp_path / "rec", configs)
    with pytest.raises(RuntimeError, match=r"stream 'rgb'.*avcodec_open2"):
        writer.start()
    writer.stop()  # harmless after a failed start
    assert not (tmp_path / "rec").exists()  # no orphan left for recovery to trip over


def test_unknown_codec_is_refused_at_construction_naming_the_available_ones(
    tmp_path: pathlib.Path,
) -> None:
    configs = {
        "rgb": recording.VideoStreamConfig(
            width=64, height=48, fps=25, codec="no-such-codec", metadata={"type": "rgb"}
        )
    }
    with pytest.raises(ValueError, match=r"'no-such-codec' is not available") as info:
        recording.ChunkedWriter("rec", tmp_path / "rec", configs)
    assert "encoders that open here: libx264" in str(info.value)
    assert "ffv1" in str(info.value)
    assert not (tmp_path / "rec").exists()


def test_encoder_that_cannot_open_is_refused_at_construction_naming_the_usable_ones(
    tmp_path: pathlib.Path,
) -> None:
    # PyAV lists the Raspberry Pi's hardware encoder, but it cannot open here (no device).
    if "h264_v4l2m2m" not in encoder_options.video_encoders():
        pytest.skip("this PyAV build has no h264_v4l2m2m")
    configs = {
        "rgb": recording.VideoStreamConfig(
            width=64, height=48, fps=25, codec="h264_v4l2m2m", metadata={"type": "rgb"}
        )
    }
    with pytest.raises(ValueError, match=r"'h264_v4l2m2m' cannot open 64x48 yuv420p") as info:
        recording.ChunkedWriter("rec", tmp_path / "rec", configs)
    assert "encoders that open here: libx264" in str(info.value)
    assert "h264_v4l2m2m" not in str(info.value).split("encoders that open here:")[1]
    assert not (tmp_path / "rec").exists()


def test_pixel_format_the_encoder_refuses_is_refused_at_construction(
    tmp_path: pathlib.Path,
) -> None:
    configs = {
        "rgb": recording.VideoStreamConfig(
            width=64,
            height=48,
            fps=25,
            codec="libx264",
            input_pixel_format="gray16le",
            output_pixel_format="gray16le",
            metadata={"type": "rgb"},
        )
    }
    with pytest.raises(ValueError, match=r"'libx264' cannot open 64x48 gray16le"):
        recording.ChunkedWriter("rec", tmp_path / "rec", configs)
    assert not (tmp_path / "rec").exists()


def test_encoder_probe_is_cached_per_codec_pixel_format_and_size(tmp_path: pathlib.Path) -> None:
    configs = fx.small_video_configs()
    recording.ChunkedWriter("rec1", tmp_path / "rec1", configs)
    before = encoder_options._open_error.cache_info()
    for i in range(5):
        recording.ChunkedWriter(f"rec{i + 2}", tmp_path / f"rec{i + 2}", configs)
    after = encoder_options._open_error.cache_info()
    assert after.misses == before.misses  # no encoder opened again for the same streams
    assert after.hits >= before.hits + 5 * len(configs)


def test_on_error_callback_may_stop_the_writer(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    done = threading.Event()
    holder: list[recording.ChunkedWriter] = []

    def on_error() -> None:
        holder[0].stop()
        done.set()

    writer = writer_factory(on_error=on_error)
    holder.append(writer)
    writer.start()
    writer.get_encoder_queue("imu").put((b"ok", fx.timestamp_at(0)))
    pid = writer.worker_pid("rgb")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert done.wait(20), "stop() from on_error did not return"
    assert (writer.directory / "COMPLETE").exists()
    assert writer.stats["imu"].frames_written == 1


def test_on_error_callback_that_raises_does_not_break_the_writer(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    def explode() -> None:
        raise RuntimeError("callback bug")

    writer = writer_factory(on_error=explode)
    writer.start()
    q = writer.get_encoder_queue("imu")
    q.put((b"", fx.timestamp_at(0)))  # empty item: invalid
    q.put((b"ok", fx.timestamp_at(1)))
    writer.stop()
    assert writer.stats["imu"].frames_written == 1
    assert writer.stats["imu"].frames_invalid == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_length_s": 0}, "chunk_length_s"),
        ({"max_encoder_queue_size": 0}, "max_encoder_queue_size"),
        ({"cluster_time_limit_ms": 500}, "cluster_time_limit_ms"),
        ({"put_timeout_s": -1}, "put_timeout_s"),
        ({"origin": fx.ORIGIN.replace(tzinfo=None)}, "timezone-aware"),
    ],
)
def test_writer_arguments_are_validated(
    tmp_path: pathlib.Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        recording.ChunkedWriter("rec", tmp_path, fx.small_video_configs(), **kwargs)  # type: ignore[arg-type]


def test_stream_names_are_validated(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="used twice"):
        recording.ChunkedWriter(
            "rec",
            tmp_path,
            {"imu": fx.small_video_configs()["rgb"]},
            sensor_stream_configs={"imu": recording.imu_stream_config()},
        )
    with pytest.raises(ValueError, match="file name"):
        recording.ChunkedWriter("rec", tmp_path, {"../x": fx.small_video_configs()["rgb"]})
    with pytest.raises(ValueError, match="recording name"):
        recording.ChunkedWriter("a/b", tmp_path, fx.small_video_configs())
    with pytest.raises(ValueError, match="expected a DataStreamConfig"):
        recording.ChunkedWriter(
            "rec",
            tmp_path,
            {},
            sensor_stream_configs={"imu": fx.small_video_configs()["rgb"]},  # type: ignore[dict-item]
        )
    with pytest.raises(ValueError, match="at least one stream"):
        recording.ChunkedWriter("rec", tmp_path, {})


def test_config_validation_messages(tmp_path: pathlib.Path) -> None:
    # As in omgrab 0.1.2 the stream 'type' is required when a writer uses the config.
    untyped = recording.VideoStreamConfig(width=64, height=48, fps=25)
    with pytest.raises(ValueError, match=r"stream 'rgb'\.metadata must carry a non-empty 'type'"):
        recording.ChunkedWriter("rec", tmp_path, {"rgb": untyped})
    with pytest.raises(ValueError, match="'type'"):
        recording.ChunkedWriter(
            "rec",
            tmp_path,
            {"rgb": fx.small_video_configs()["rgb"]},
            sensor_stream_configs={"imu": recording.DataStreamConfig()},
        )
    with pytest.raises(ValueError, match="width must be a positive int"):
        recording.VideoStreamConfig(width=0, height=48, fps=25, metadata={"type": "rgb"})
    with pytest.raises(ValueError, match="fps must be > 0"):
        recording.VideoStreamConfig(width=64, height=48, fps=0, metadata={"type": "rgb"})
    with pytest.raises(ValueError, match="even"):
        recording.VideoStreamConfig(width=63, height=48, fps=25, metadata={"type": "rgb"})
    with pytest.raises(ValueError, match="input_pixel_format 'yuyv422' is not supported"):
        recording.VideoStreamConfig(
            width=64, height=48, fps=25, input_pixel_format="yuyv422", metadata={"type": "rgb"}
        )
    with pytest.raises(ValueError, match="stream_options"):
        recording.VideoStreamConfig(
            width=64,
            height=48,
            fps=25,
            stream_options={"g": 25},
            metadata={"type": "rgb"},  # type: ignore[dict-item]
        )
    with pytest.raises(ValueError, match="codec 'json' is not supported"):
        recording.DataStreamConfig(codec="json", metadata={"type": "imu"})
    # mutable defaults are per instance
    a = recording.VideoStreamConfig(width=64, height=48, fps=25, metadata={"type": "rgb"})
    b = recording.VideoStreamConfig(width=64, height=48, fps=25, metadata={"type": "rgb"})
    a.stream_options["preset"] = "fast"
    assert b.stream_options == {}


def test_reference_stream_configs() -> None:
    rgb = recording.rgb_stream_config(stream_options={"preset": "veryfast"})
    assert (rgb.width, rgb.height, rgb.fps, rgb.codec, rgb.bitrate) == (
        1280,
        800,
        25,
        "libx264",
        4_000_000,
    )
    assert rgb.stream_options == {"preset": "veryfast", "g": "25", "bf": "0"}
    assert rgb.metadata["type"] == "rgb"
    assert rgb.frame_shape == (800, 1280, 3)
    depth = recording.depth_stream_config()
    assert (depth.width, depth.height, depth.codec) == (640, 400, "ffv1")
    assert (depth.input_pixel_format, depth.output_pixel_format) == ("gray16le", "gray16le")
    assert depth.frame_shape == (400, 640) and depth.frame_dtype == np.dtype("<u2")
    imu = recording.imu_stream_config()
    assert (imu.codec, imu.metadata["type"]) == ("ass", "imu")


def test_encoder_side_exception_is_reported_once_and_stop_returns(
    writer_factory: Callable[..., recording.ChunkedWriter],
) -> None:
    reported = threading.Event()
    calls: list[None] = []

    def on_error() -> None:
        calls.append(None)
        reported.set()

    writer = writer_factory(on_error=on_error, chunk_length_s=0.5)
    writer.start()
    q_rgb = writer.get_encoder_queue("rgb")
    q_imu = writer.get_encoder_queue("imu")
    for i in range(5):
        q_rgb.put((fx.rgb_frame(i), fx.timestamp_at(i * 40)))
    deadline = time.monotonic() + 10
    while writer.stats["rgb"].frames_written < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    # The next chunk of rgb cannot be created: the worker's muxer cannot open its file.
    shutil.rmtree(writer.directory / "rgb")
    for i in range(5, 40):
        ts = fx.timestamp_at(i * 40)
        q_rgb.put((fx.rgb_frame(i), ts))
        q_imu.put((fx.imu_payload(i), ts))
    assert reported.wait(10)
    writer.stop()
    assert len(calls) == 1
    error = writer.stats["rgb"].error or ""
    assert "stream 'rgb'" in error and "FileNotFoundError" in error
    assert writer.stats["imu"].healthy
    imu = [p.pts for f in fx.chunk_files(writer.directory, "imu") for p in fx.demux_packets(f)]
    assert imu == [i * 40 for i in range(5, 40)]


def test_fsync_problems_are_reported_once(tmp_path: pathlib.Path) -> None:
    from omgrab.recording import stream_worker

    messages: list[str] = []
    syncer = stream_worker._Syncer(0.01, messages.append)
    good = tmp_path / "chunk.mkv"
    good.write_bytes(b"x" * 100)
    syncer.follow(str(good))
    syncer.follow(str(tmp_path / "missing.mkv"))
    syncer.follow(str(tmp_path / "missing-too.mkv"))
    syncer.stop()
    assert syncer.errors == 2
    assert len(messages) == 1 and "missing.mkv" in messages[0]


@pytest.mark.tmpfs
def test_disk_full_is_reported_once_and_what_was_written_stays_readable(
    tiny_tmpfs: pathlib.Path,
) -> None:
    reported = threading.Event()
    calls: list[None] = []

    def on_error() -> None:
        calls.append(None)
        reported.set()

    video = {"depth": recording.depth_stream_config(width=320, height=200)}
    writer = recording.ChunkedWriter(
        "rec", tiny_tmpfs / "rec", video, chunk_length_s=0.4, origin=fx.ORIGIN, on_error=on_error
    )
    writer.start()
    q = writer.get_encoder_queue("depth")
    rng = np.random.default_rng(3)
    noise = [rng.integers(0, 65535, (200, 320), dtype=np.uint16) for _ in range(4)]
    for i in range(80):  # ~128 kB of incompressible depth a frame: 3 MiB fill up quickly
        q.put((noise[i % 4], fx.timestamp_at(i * 40)))
    assert reported.wait(20), "a full disk was not reported"
    started = time.monotonic()
    writer.stop()
    assert time.monotonic() - started < 10
    assert len(calls) == 1
    assert any("No space left" in e for e in writer.errors), writer.errors
    files = fx.chunk_files(writer.directory, "depth")
    assert files, "the chunks written before the disk filled up are gone"
    readable = [p.pts for f in files for p in fx.demux_packets(f)]
    assert readable and readable == [i * 40 for i in range(len(readable))]
