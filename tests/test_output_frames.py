"""Frame recording: JPEG files, colour order, rate levels, drop policy, validation."""

from __future__ import annotations

import os
import pathlib
import time

import cv2
import numpy as np
import pytest

from omgrab import clock, output
from omgrab.output import frame_recorder, rate_limit
from tests import test_storage


def session_frames(m: output.OutputManager) -> pathlib.Path:
    assert m.session_dir is not None
    return pathlib.Path(m.session_dir, "frames")


def solid(h: int, w: int, color: tuple[int, ...]) -> np.ndarray:
    return np.full((h, w, len(color)), color, np.uint8)


@pytest.mark.parametrize(
    ("order", "frame", "expected_bgr"),
    [
        ("rgb", solid(16, 24, (255, 0, 0)), (0, 0, 255)),  # red given as RGB
        ("bgr", solid(16, 24, (0, 0, 255)), (0, 0, 255)),  # red given as BGR
        ("rgb", solid(16, 24, (0, 255, 0, 255)), (0, 255, 0)),  # green RGBA
        ("bgr", solid(16, 24, (255, 0, 0, 7)), (255, 0, 0)),  # blue BGRA
    ],
)
def test_colour_order_is_honoured(
    tmp_path: pathlib.Path, order: str, frame: np.ndarray, expected_bgr: tuple[int, int, int]
) -> None:
    cfg = output.OutputConfig(color_order=output.ColorOrder(order))
    with output.OutputManager(cfg, output_dir=tmp_path) as m:
        m.record_frame(frame, 5, 2)
        assert m.flush(10)
        path = session_frames(m) / "5.jpg"
    img = cv2.imread(str(path))
    assert img.shape == (16, 24, 3)
    assert np.abs(img[8, 12].astype(int) - expected_bgr).max() <= 3


def test_grey_frames_and_uint64_ids(tmp_path: pathlib.Path) -> None:
    t = clock.ManualTimeSource()
    with output.OutputManager(time_source=t, output_dir=tmp_path) as m:
        grey = np.full((20, 30), 128, np.uint8)
        m.record_frame(grey, 2**64 - 1, 1)
        t.advance(1)
        m.record_frame(grey[..., None], np.uint64(7), 1)
        assert m.flush(10)
        frames = session_frames(m)
        assert sorted(p.name for p in frames.iterdir()) == ["18446744073709551615.jpg", "7.jpg"]
        img = cv2.imread(str(frames / "7.jpg"), cv2.IMREAD_UNCHANGED)
        assert img.shape == (20, 30)
        assert abs(int(img[10, 10]) - 128) <= 2
        assert m.get_storage_status().frames_recorded == 2


def test_jpeg_quality_is_applied(tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(1)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (200, 300, 3), np.uint8), (0, 0), 2)
    sizes = {}
    for q in (50, 95):
        with output.OutputManager(output.OutputConfig(jpeg_quality=q), output_dir=tmp_path) as m:
            m.record_frame(frame, 1, 2)
            assert m.flush(10)
            data = (session_frames(m) / "1.jpg").read_bytes()
        ok, ref = cv2.imencode(
            ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q]
        )
        assert ok and data == ref.tobytes()
        sizes[q] = len(data)
    assert sizes[50] < sizes[95]


def feed(
    m: output.OutputManager,
    t: clock.ManualTimeSource,
    fps: float,
    seconds: float,
    level: int,
    start: int = 0,
) -> int:
    frame = solid(8, 8, (1, 2, 3))
    n = round(fps * seconds)
    for i in range(n):
        m.record_frame(frame, start + i, level)
        t.advance(1.0 / fps)
    return n


@pytest.mark.parametrize(
    ("camera_fps", "level", "seconds", "expected"),
    [
        (60.0, 2, 2.0, 60),  # L2 caps at 30 fps
        (30.0, 2, 2.0, 60),  # a 30 fps camera at L2 keeps every frame
        (30.0, 1, 3.0, 7),  # L1 caps at 2 fps (frames at 0, 0.4, 0.9, ... 2.9 s)
        (25.0, 2, 2.0, 50),
    ],
)
def test_level_rates(
    tmp_path: pathlib.Path, camera_fps: float, level: int, seconds: float, expected: int
) -> None:
    t = clock.ManualTimeSource()
    cfg = output.OutputConfig(frame_queue_size=200)  # the manual clock feeds instantly
    with output.OutputManager(cfg, time_source=t, output_dir=tmp_path) as m:
        n = feed(m, t, camera_fps, seconds, level)
        assert m.flush(10)
        s = m.stats()["frames"]
    assert s["recorded"] == expected
    assert s["rate_limited"] == n - expected
    assert len(list(session_frames(m).iterdir())) == expected


def test_rate_limiter_tolerates_jitter_and_never_exceeds_rate() -> None:
    rng = np.random.default_rng(3)
    lim = rate_limit.LevelRateLimiter({1: 2.0, 2: 30.0})
    kept = 0
    for k in range(3000):  # 100 s of a 30 fps camera with +-4 ms timestamp jitter
        kept += lim.admit(2, k / 30 + rng.uniform(-0.004, 0.004))
    assert kept == 3000
    lim = rate_limit.LevelRateLimiter({1: 2.0, 2: 30.0})
    times = np.cumsum(rng.uniform(0.001, 0.02, 20000))
    admitted = [x for x in times if lim.admit(2, float(x))]
    window = np.searchsorted(admitted, np.array(admitted) + 1.0) - np.arange(len(admitted))
    assert window.max() <= 31
    with pytest.raises(ValueError, match="level must be one of"):
        lim.admit(3, 0.0)


def test_switching_levels_takes_effect_at_once() -> None:
    lim = rate_limit.LevelRateLimiter({1: 2.0, 2: 30.0})
    assert lim.admit(1, 0.0)
    assert not lim.admit(1, 0.2)
    assert lim.admit(2, 0.04)  # L2 frame right after an L1 one
    assert lim.admit(2, 0.075)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (None, "frame is None"),
        ([[1, 2]], "must be a numpy.ndarray, got list"),
        (np.zeros((4, 4, 3), np.float32), "dtype must be uint8"),
        (np.zeros((4, 4), np.uint16), "dtype must be uint8"),
        (np.zeros((4, 4, 2), np.uint8), "1, 3 or 4 channels"),
        (np.zeros((0, 4, 3), np.uint8), "frame is empty"),
        (np.zeros((2, 4, 4, 3), np.uint8), "got 4 dimensions"),
        (np.zeros(5, np.uint8), "got 1 dimensions"),
    ],
)
def test_bad_frames_raise_naming_the_problem(
    tmp_path: pathlib.Path, frame: object, message: str
) -> None:
    with output.OutputManager(output_dir=tmp_path) as m:
        with pytest.raises(output.InvalidEntryError, match=message):
            m.record_frame(frame, 1, 2)
        m.record_frame(solid(4, 4, (0, 0, 0)), 2, 2)  # still works
        assert m.flush(10)
        assert m.stats()["frames"]["recorded"] == 1
        assert m.error_count == 0


@pytest.mark.parametrize(
    ("frame_id", "level", "message"),
    [
        (-1, 2, "frame_id must be in"),
        (2**64, 2, "frame_id must be in"),
        ("3", 2, "frame_id must be an integer"),
        (1.0, 2, "frame_id must be an integer"),
        (1, 0, "level must be 1 or 2"),
        (1, 3, "level must be 1 or 2"),
        (1, True, "level must be 1 or 2"),
        (1, "2", "level must be 1 or 2"),
    ],
)
def test_bad_ids_and_levels(
    tmp_path: pathlib.Path, frame_id: object, level: object, message: str
) -> None:
    with output.OutputManager(output_dir=tmp_path) as m, pytest.raises(ValueError, match=message):
        m.record_frame(solid(4, 4, (0, 0, 0)), frame_id, level)  # type: ignore[arg-type]


def test_frames_are_copied_so_callers_may_reuse_buffers(tmp_path: pathlib.Path) -> None:
    t = clock.ManualTimeSource()
    buf = solid(16, 16, (255, 255, 255))
    cfg = output.OutputConfig(copy_frames=True)
    with output.OutputManager(cfg, time_source=t, output_dir=tmp_path) as m:
        for i in range(5):
            m.record_frame(buf, i, 2)
            buf[:] = 0  # the camera overwrites its buffer right away
            buf[:] = 255
            t.advance(1)
        buf[:] = 0
        assert m.flush(10)
        for i in range(5):
            img = cv2.imread(str(session_frames(m) / f"{i}.jpg"))
            assert img.min() >= 250


def test_reused_buffers_are_detected_without_copying(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    t = clock.ManualTimeSource()
    cfg = output.OutputConfig(jpeg_workers=1, frame_queue_size=4)
    with output.OutputManager(cfg, time_source=t, output_dir=tmp_path) as m:
        frames = session_frames(m)
        os.mkfifo(frames / ".0.jpg.tmp")  # hold the encoder so frames stay queued
        buf = solid(8, 8, (1, 1, 1))
        m.record_frame(buf, 0, 2)
        assert m._frames is not None
        wait_until(m._frames._queue.empty)
        t.advance(1)
        m.record_frame(solid(8, 8, (1, 1, 1)), 1, 2)  # a fresh array: fine
        t.advance(1)
        m.record_frame(buf, 2, 2)  # the same buffer while frame 0 is still in flight
        assert m.stats()["frames"]["buffer_reuse_detected"] == 1
        assert "set OutputConfig(copy_frames=True)" in caplog.text
        with open(frames / ".0.jpg.tmp", "rb") as reader:
            reader.read()
        assert m.flush(10)
        assert m.stats()["frames"]["recorded"] == 3


def wait_until(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


@pytest.mark.parametrize("copy_frames", [True, False])
def test_full_queue_drops_newest_frames_and_counts_them(
    tmp_path: pathlib.Path, copy_frames: bool
) -> None:
    """A blocked encoder (its output file is a FIFO nobody reads yet) fills the queue."""
    t = clock.ManualTimeSource()
    cfg = output.OutputConfig(jpeg_workers=1, frame_queue_size=2, copy_frames=copy_frames)
    # Without copies the queue alone bounds the frames in flight.
    with output.OutputManager(cfg, time_source=t, output_dir=tmp_path) as m:
        frames = session_frames(m)
        fifo = frames / ".0.jpg.tmp"
        os.mkfifo(fifo)
        frame = solid(8, 8, (9, 9, 9))
        start = time.perf_counter()
        m.record_frame(frame, 0, 2)
        assert m._frames is not None
        wait_until(m._frames._queue.empty)  # the worker took frame 0 and blocks on the FIFO
        for i in range(1, 10):
            t.advance(1)
            m.record_frame(frame, i, 2)
        assert time.perf_counter() - start < 5  # none of these calls blocked
        s = m.stats()["frames"]
        assert s["dropped_queue_full"] == 7  # frames 3..9 found the queue (1, 2) full
        with open(fifo, "rb") as reader:  # unblock the worker
            data = reader.read()
        assert data.startswith(b"\xff\xd8")  # it was writing a JPEG
        assert m.flush(10)
        s = m.stats()["frames"]
        assert s["recorded"] == 3
        assert sorted(p.name for p in frames.glob("[12].jpg")) == ["1.jpg", "2.jpg"]
        # The queue drained: new frames are accepted again.
        t.advance(1)
        m.record_frame(frame, 20, 2)
        assert m.flush(10)
        assert (frames / "20.jpg").exists()


def test_storage_ladder_with_scripted_statvfs(tmp_path: pathlib.Path) -> None:
    t = clock.ManualTimeSource()
    fake = test_storage.FakeStatvfs(avail=500)
    cfg = output.OutputConfig(storage_check_interval_s=0.0, frame_queue_size=200)
    with output.OutputManager(cfg, time_source=t, stat_fn=fake, output_dir=tmp_path) as m:
        feed(m, t, 30, 1.0, 2, start=0)
        assert m.flush(10)
        assert m.stats()["frames"]["recorded"] == 30
        assert not m.get_storage_status().should_reduce_recording
        fake.avail = 150  # 15 % free: level 2 frames are recorded at the L1 rate
        feed(m, t, 30, 2.0, 2, start=100)
        assert m.flush(10)
        s = m.stats()["frames"]
        assert s["recorded"] == 34
        assert s["downgraded_to_l1"] == 60
        st = m.get_storage_status()
        assert st.should_reduce_recording and st.nvme_free_pct == pytest.approx(15.0)
        fake.avail = 50  # 5 %: no frames at all
        feed(m, t, 30, 1.0, 1, start=200)
        assert m.flush(10)
        s = m.stats()["frames"]
        assert s["recorded"] == 34
        assert s["dropped_storage"] == 30
        fake.avail = 900  # recovered
        feed(m, t, 30, 1.0, 2, start=300)
        assert m.flush(10)
        assert m.stats()["frames"]["recorded"] == 64


def test_close_with_a_stuck_encoder_returns_and_counts_unwritten_frames(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    t = clock.ManualTimeSource()
    cfg = output.OutputConfig(jpeg_workers=1, frame_queue_size=2)
    m = output.OutputManager(cfg, time_source=t, output_dir=tmp_path)
    frames = session_frames(m)
    fifo = frames / ".0.jpg.tmp"
    os.mkfifo(fifo)
    m.record_frame(solid(8, 8, (5, 5, 5)), 0, 2)
    assert m._frames is not None
    recorder = m._frames
    wait_until(recorder._queue.empty)
    for i in (1, 2):
        t.advance(1)
        m.record_frame(solid(8, 8, (5, 5, 5)), i, 2)
    start = time.perf_counter()
    m.close(timeout=0.5)
    assert time.perf_counter() - start < 5
    assert "did not stop within 0.5 s" in caplog.text
    assert "2 frames queued during close() were not written" in caplog.text
    assert m.stats()["frames"]["dropped_queue_full"] == 2
    # Let the stuck thread finish so it does not outlive the test.
    with open(fifo, "rb") as reader:
        reader.read()
    recorder._queue.put(frame_recorder._STOP)
    for th in recorder._threads:
        th.join(5)
        assert not th.is_alive()
