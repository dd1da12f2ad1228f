"""Synthetic, queue-reader cameras and the burned-in frame counter."""

from __future__ import annotations

import datetime
import io
import queue
import threading

import av
import numpy as np
import pytest

from omgrab import cameras
from omgrab.cameras import frame_counter


def test_camera_config_validates() -> None:
    assert cameras.CameraConfig(25, 1280, 800).width == 1280
    with pytest.raises(ValueError, match="fps"):
        cameras.CameraConfig(0, 10, 10)
    with pytest.raises(ValueError, match="width"):
        cameras.CameraConfig(25, -1, 10)
    with pytest.raises(ValueError, match="height"):
        cameras.CameraConfig(25, 10, 2.5)  # type: ignore[arg-type]


def test_public_names_reexported() -> None:
    for name in (
        "Camera",
        "CameraConfig",
        "FrameUnavailableError",
        "QueueReaderCamera",
        "SyntheticCamera",
        "VideoFileCamera",
        "USBCamera",
        "read_frame_counter",
    ):
        assert hasattr(cameras, name), name


def test_synthetic_rgb_frames(manual_clock) -> None:
    config = cameras.CameraConfig(25, 160, 120)
    with cameras.SyntheticCamera(config, clock=manual_clock) as cam:
        frames = [cam.get_next_frame(timeout_s=1.0) for _ in range(5)]
    for index, (image, timestamp) in enumerate(frames):
        assert image.shape == (120, 160, 3)
        assert image.dtype == np.uint8
        assert timestamp.tzinfo is not None
        assert timestamp.utcoffset() == datetime.timedelta(0)
        assert cameras.read_frame_counter(image) == index
    # Content moves: the picture below the counter strip differs between frames.
    strip = frame_counter.strip_height(120)
    assert not np.array_equal(frames[0][0][strip:], frames[1][0][strip:])
    # Each frame is a fresh array (consumers may keep them).
    assert not np.shares_memory(frames[0][0], frames[1][0])


def test_synthetic_depth_frames(manual_clock) -> None:
    config = cameras.CameraConfig(25, 160, 120)
    with cameras.SyntheticCamera(config, mode="depth", clock=manual_clock, start_index=7) as cam:
        image, _ = cam.get_next_frame(timeout_s=1.0)
    assert image.shape == (120, 160)
    assert image.dtype == np.uint16
    strip = frame_counter.strip_height(120)
    body = image[strip:]
    assert int(body.min()) >= 600 and int(body.max()) <= 5000  # plausible millimetres
    assert cameras.read_frame_counter(image) == 7


def test_synthetic_camera_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        cameras.SyntheticCamera(cameras.CameraConfig(25, 160, 120), mode="ir")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too small"):
        cameras.SyntheticCamera(cameras.CameraConfig(25, 20, 10))


def test_closed_camera_raises() -> None:
    cam = cameras.SyntheticCamera(cameras.CameraConfig(25, 160, 120), pace=False)
    with pytest.raises(cameras.FrameUnavailableError, match="not open"):
        cam.get_next_frame(timeout_s=0.1)


def test_counter_roundtrip_and_wraparound() -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    for value in (0, 1, 12345, 2**24 - 1, 2**24 + 5):
        frame_counter.draw_frame_counter(image, value, 0, 255)
        assert cameras.read_frame_counter(image) == value % 2**24


def test_counter_reader_rejects_images_without_counter() -> None:
    with pytest.raises(frame_counter.FrameCounterError, match="reference"):
        cameras.read_frame_counter(np.full((120, 160, 3), 128, np.uint8))
    image = np.zeros((120, 160), np.uint16)
    frame_counter.draw_frame_counter(image, 99, 500, 6000)
    # Flip one data cell: the check value catches it.
    (y0, y1), (x0, x1) = frame_counter._cell_bounds(160, 120, 5)
    image[y0:y1, x0:x1] = 6000 if image[y0, x0] == 500 else 500
    with pytest.raises(frame_counter.FrameCounterError, match="check"):
        cameras.read_frame_counter(image)
    with pytest.raises(frame_counter.FrameCounterError, match="too small"):
        cameras.read_frame_counter(np.zeros((10, 10), np.uint8))


def test_counter_survives_h264_at_4mbit() -> None:
    """Reference RGB stream: 1280x800 libx264 at 4 Mbit/s; every counter must decode."""
    config = cameras.CameraConfig(25, 1280, 800)
    cam = cameras.SyntheticCamera(config, pace=False)
    frames = 30
    dropped = {11, 12, 20}  # simulate dropped frames: the gap must be visible after decode
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1280, 800, "yuv420p"
        stream.bit_rate = 4_000_000
        stream.options = {"preset": "veryfast", "bf": "0", "g": "25"}
        for index in range(frames):
            if index in dropped:
                continue
            frame = av.VideoFrame.from_ndarray(cam.render(index), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buf.seek(0)
    with av.open(buf) as container:
        decoded = [
            cameras.read_frame_counter(f.to_ndarray(format="rgb24"))
            for f in container.decode(video=0)
        ]
    assert decoded == [i for i in range(frames) if i not in dropped]


def test_depth_roundtrips_exactly_through_ffv1() -> None:
    config = cameras.CameraConfig(25, 640, 400)
    cam = cameras.SyntheticCamera(config, mode="depth", pace=False)
    originals = [cam.render(i) for i in range(5)]
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 400, "gray16le"
        for image in originals:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="gray16le")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buf.seek(0)
    with av.open(buf) as container:
        decoded = [f.to_ndarray(format="gray16le") for f in container.decode(video=0)]
    assert len(decoded) == 5
    for index, (orig, back) in enumerate(zip(originals, decoded, strict=True)):
        assert back.dtype == np.uint16
        np.testing.assert_array_equal(orig, back)
        assert cameras.read_frame_counter(back) == index


def test_queue_reader_camera_passes_frames_through() -> None:
    q: queue.Queue = queue.Queue()
    config = cameras.CameraConfig(25, 4, 4)
    ts = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    image = np.ones((4, 4, 3), np.uint8)
    cam = cameras.QueueReaderCamera(q, config)
    with cam:
        q.put((image, ts))
        got_image, got_ts = cam.get_next_frame(timeout_s=1.0)
        assert got_image is image and got_ts == ts
        with pytest.raises(cameras.FrameUnavailableError, match=r"within 0\.05 s"):
            cam.get_next_frame(timeout_s=0.05)
        for _ in range(3):
            q.put((image, ts))
        assert cam.flush_queue() == 3
        assert cam.flush_queue() == 0
        assert q.empty()


def test_queue_reader_close_unblocks_waiting_reader() -> None:
    q: queue.Queue = queue.Queue()
    cam = cameras.QueueReaderCamera(q, cameras.CameraConfig(25, 4, 4))
    cam.open()
    errors: list[BaseException] = []
    started = threading.Event()

    def reader() -> None:
        started.set()
        try:
            cam.get_next_frame(timeout_s=None)
        except cameras.FrameUnavailableError as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    started.wait(1.0)
    cam.close()
    thread.join(2.0)
    assert not thread.is_alive()
    assert len(errors) == 1 and "closed" in str(errors[0])
