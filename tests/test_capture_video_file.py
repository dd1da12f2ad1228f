"""VideoFileCamera and USBCamera, both reading real video files written in the test."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from omgrab import cameras
from tests import fixtures_capture


def test_video_file_replays_every_frame(small_video_file, manual_clock) -> None:
    cam = cameras.VideoFileCamera(small_video_file, clock=manual_clock, pace=False)
    assert cam.config == cameras.CameraConfig(25.0, 160, 120)
    counters = []
    with cam:
        while True:
            try:
                image, _timestamp = cam.get_next_frame(timeout_s=1.0)
            except cameras.FrameUnavailableError as exc:
                assert "end of video file" in str(exc)
                break
            assert image.shape == (120, 160, 3) and image.dtype == np.uint8
            counters.append(cameras.read_frame_counter(image))
        assert cam.finished
    assert counters == list(range(25))


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".avi"])
def test_video_file_other_containers(tmp_path, manual_clock, suffix: str) -> None:
    path = fixtures_capture.write_video(tmp_path / f"clip{suffix}", 5)
    with cameras.VideoFileCamera(path, clock=manual_clock, pace=False) as cam:
        counters = [cameras.read_frame_counter(cam.get_next_frame(1.0)[0]) for _ in range(5)]
    assert counters == [0, 1, 2, 3, 4]


def test_video_file_real_time_pacing(small_video_file, manual_clock) -> None:
    cam = cameras.VideoFileCamera(small_video_file, clock=manual_clock, pace=True)
    with cam:
        stamps = [cam.get_next_frame(timeout_s=1.0)[1] for _ in range(10)]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    assert gaps == pytest.approx([0.04] * 9, abs=1e-6)


def test_video_file_loops(small_video_file, manual_clock) -> None:
    cam = cameras.VideoFileCamera(small_video_file, clock=manual_clock, pace=False, loop=True)
    with cam:
        counters = [cameras.read_frame_counter(cam.get_next_frame(1.0)[0]) for _ in range(60)]
        assert cam.loops == 2
    assert counters == [i % 25 for i in range(60)]


def test_video_file_gray16_depth_exact(tmp_path, manual_clock) -> None:
    path = fixtures_capture.write_video(tmp_path / "depth.mkv", 5, mode="depth")
    source = cameras.SyntheticCamera(fixtures_capture.SMALL, mode="depth", pace=False)
    with cameras.VideoFileCamera(path, clock=manual_clock, pace=False) as cam:  # auto: gray16
        for index in range(5):
            image, _ = cam.get_next_frame(1.0)
            assert image.dtype == np.uint16 and image.shape == (120, 160)
            np.testing.assert_array_equal(image, source.render(index))
    with cameras.VideoFileCamera(path, clock=manual_clock, pace=False, output="rgb") as cam:
        assert cam.get_next_frame(1.0)[0].shape == (120, 160, 3)


def test_video_file_resizes_only_when_asked(small_video_file, manual_clock) -> None:
    target = cameras.CameraConfig(25, 80, 60)
    with cameras.VideoFileCamera(small_video_file, target, clock=manual_clock, pace=False) as cam:
        assert cam.get_next_frame(1.0)[0].shape == (120, 160, 3)
    with cameras.VideoFileCamera(
        small_video_file, target, clock=manual_clock, pace=False, resize=True
    ) as cam:
        assert cam.get_next_frame(1.0)[0].shape == (60, 80, 3)


def test_video_file_bad_arguments(tmp_path, small_video_file) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.mkv"):
        cameras.VideoFileCamera(tmp_path / "missing.mkv")
    with pytest.raises(ValueError, match="output"):
        cameras.VideoFileCamera(small_video_file, output="bgr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resize"):
        cameras.VideoFileCamera(small_video_file, resize=True)


def _usb_on_file(path, **kwargs) -> cameras.USBCamera:
    return cameras.USBCamera(
        str(path), fixtures_capture.SMALL, api_preference=cv2.CAP_FFMPEG, **kwargs
    )


def test_usb_camera_reads_file_then_disconnects(small_video_file) -> None:
    cam = _usb_on_file(small_video_file, buffer_size=64)
    counters = []
    with cam:
        assert cam.actual_config is not None and cam.actual_config.width == 160
        while True:
            try:
                image, _timestamp = cam.get_next_frame(timeout_s=5.0)
            except cameras.FrameUnavailableError as exc:
                assert "disconnected" in str(exc)
                break
            assert image.shape == (120, 160, 3)
            counters.append(cameras.read_frame_counter(image))
        # End of the file plays the part of a pulled cable.
        assert cam.connected is False
        assert cam.frames_dropped == 0
        assert cam.errors == 0
        with pytest.raises(cameras.FrameUnavailableError):
            cam.get_next_frame(timeout_s=0.1)
    assert counters == list(range(25))


def test_usb_camera_converts_bgr_to_rgb(tmp_path) -> None:
    # A solid red picture: OpenCV decodes BGR, the camera must deliver RGB.
    path = tmp_path / "red.mkv"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25, (64, 48))
    assert writer.isOpened()
    bgr = np.zeros((48, 64, 3), np.uint8)
    bgr[..., 2] = 255
    for _ in range(3):
        writer.write(bgr)
    writer.release()
    cam = cameras.USBCamera(
        str(path), cameras.CameraConfig(25, 64, 48), api_preference=cv2.CAP_FFMPEG, buffer_size=8
    )
    with cam:
        image, _ = cam.get_next_frame(timeout_s=5.0)
    assert image[..., 0].mean() > 200 and image[..., 2].mean() < 50


def test_usb_camera_latest_frame_buffer_drops_old_frames(small_video_file) -> None:
    cam = _usb_on_file(small_video_file, buffer_size=1)
    with cam:
        # Let the reader reach the end of the file without consuming anything.
        assert cam.wait_until_disconnected(timeout_s=5.0)
        image, _ = cam.get_next_frame(timeout_s=1.0)  # buffered frame survives disconnect
        assert cameras.read_frame_counter(image) == 24  # only the newest was kept
        assert cam.frames_dropped == 24
        latest = cam.latest_frame()
        assert latest is not None and cameras.read_frame_counter(latest[0]) == 24
        with pytest.raises(cameras.FrameUnavailableError, match="disconnected"):
            cam.get_next_frame(timeout_s=0.1)


def test_usb_camera_open_failure(tmp_path) -> None:
    cam = cameras.USBCamera(
        str(tmp_path / "nope.mkv"), fixtures_capture.SMALL, api_preference=cv2.CAP_FFMPEG
    )
    with pytest.raises(cameras.FrameUnavailableError, match="cannot open"):
        cam.open()
    assert not cam.is_open and not cam.connected


class _ExplodingCapture:
    def __init__(self) -> None:
        self.released = False

    def isOpened(self) -> bool:
        return True

    def set(self, prop: int, value: float) -> bool:
        return False

    def get(self, prop: int) -> float:
        return 0.0

    def read(self):
        raise RuntimeError("driver exploded")

    def release(self) -> None:
        self.released = True


def test_usb_camera_reader_errors_are_counted_and_propagated() -> None:
    capture = _ExplodingCapture()
    cam = cameras.USBCamera(0, fixtures_capture.SMALL, capture_factory=lambda d, a: capture)
    with cam:
        with pytest.raises(cameras.FrameUnavailableError) as info:
            cam.get_next_frame(timeout_s=2.0)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert cam.errors == 1
        assert isinstance(cam.error, RuntimeError)
        assert not cam.connected
    assert capture.released


def test_usb_camera_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="buffer_size"):
        cameras.USBCamera(0, fixtures_capture.SMALL, buffer_size=0)
    with pytest.raises(ValueError, match="fourcc"):
        cameras.USBCamera(0, fixtures_capture.SMALL, fourcc="MJPEG")


class _ScriptedCapture:
    """Records what the camera asks of the backend; delivers two BGR frames, then fails."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, float]] = []
        self.frames = [np.full((48, 64, 3), (255, 0, 0), np.uint8) for _ in range(2)]

    def isOpened(self) -> bool:
        return True

    def set(self, prop: int, value: float) -> bool:
        self.calls.append(("set", prop, value))
        return True

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FRAME_WIDTH: 64, cv2.CAP_PROP_FRAME_HEIGHT: 48}.get(prop, 30.0)

    def read(self):
        if self.frames:
            return True, self.frames.pop()
        return False, None

    def release(self) -> None:
        pass


def test_usb_camera_requests_v4l2_mjpg_size_and_fps() -> None:
    capture = _ScriptedCapture()
    opened: list[tuple[object, int]] = []

    def factory(device, api):
        opened.append((device, api))
        return capture

    config = cameras.CameraConfig(30, 64, 48)
    cam = cameras.USBCamera("/dev/video3", config, capture_factory=factory, buffer_size=4)
    with cam:
        image, _ = cam.get_next_frame(timeout_s=2.0)
        assert image[0, 0].tolist() == [0, 0, 255]  # BGR blue became RGB blue
        assert cam.actual_config == cameras.CameraConfig(30.0, 64, 48)
    assert opened == [("/dev/video3", cv2.CAP_V4L2)]
    mjpg = float(cv2.VideoWriter.fourcc(*"MJPG"))
    assert capture.calls == [  # fourcc before size: V4L2 picks the size per format
        ("set", cv2.CAP_PROP_FOURCC, mjpg),
        ("set", cv2.CAP_PROP_FRAME_WIDTH, 64.0),
        ("set", cv2.CAP_PROP_FRAME_HEIGHT, 48.0),
        ("set", cv2.CAP_PROP_FPS, 30.0),
    ]
