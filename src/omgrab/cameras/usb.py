"""A USB (UVC) camera read through OpenCV's V4L2 backend on a background thread."""

from __future__ import annotations

import collections
import collections.abc
import logging
import threading
import time
from typing import Any

import cv2
import numpy as np

from omgrab import clock as clock_mod
from omgrab.cameras import base

logger = logging.getLogger(__name__)

CaptureFactory = collections.abc.Callable[[int | str, int], Any]


def _open_video_capture(device: int | str, api_preference: int) -> Any:
    return cv2.VideoCapture(device, api_preference)


class USBCamera(base.Camera):
    """A V4L2 camera (``/dev/videoN`` or an index) read continuously into a small buffer.

    A reader thread calls ``VideoCapture.read()`` as fast as the camera delivers, stamps each
    frame with the device clock the moment it arrives, converts BGR to RGB and keeps the newest
    ``buffer_size`` frames (older ones are dropped and counted in ``frames_dropped``). When a
    read fails (cable pulled, end of a file) the camera becomes disconnected: ``connected`` is
    False and every later ``get_next_frame`` raises ``FrameUnavailableError``. An exception in
    the reader thread is logged, counted in ``errors`` and re-raised (as the cause of
    ``FrameUnavailableError``) to the next reader.

    Args:
        device: Device index (``0``) or path (``'/dev/video0'``; a file path with a non-V4L2
            ``api_preference``).
        config: Requested frame rate and size.
        clock: Device clock used for timestamps; the process-wide clock by default.
        api_preference: OpenCV backend; ``cv2.CAP_V4L2`` by default (``cv2.CAP_FFMPEG`` or
            ``cv2.CAP_ANY`` open video files, which is how this class is tested).
        fourcc: Pixel format requested from the camera (``'MJPG'``); None leaves the default.
        buffer_size: Frames kept for the consumer: 1 = always the latest frame.
        max_read_failures: Consecutive failed reads after which the camera counts as
            disconnected.
        capture_factory: ``(device, api_preference) -> VideoCapture``; for tests and exotic
            backends.
    """

    def __init__(
        self,
        device: int | str,
        config: base.CameraConfig,
        *,
        clock: clock_mod.DeviceClock | None = None,
        api_preference: int | None = None,
        fourcc: str | None = "MJPG",
        buffer_size: int = 1,
        max_read_failures: int = 3,
        capture_factory: CaptureFactory | None = None,
    ) -> None:
        super().__init__(config, clock=clock, pace=False)
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        if max_read_failures < 1:
            raise ValueError(f"max_read_failures must be >= 1, got {max_read_failures}")
        if fourcc is not None and len(fourcc) != 4:
            raise ValueError(f"fourcc must be 4 characters, got {fourcc!r}")
        self._device = device
        self._api = cv2.CAP_V4L2 if api_preference is None else api_preference
        self._fourcc = fourcc
        self._max_failures = max_read_failures
        self._factory: CaptureFactory = (
            capture_factory if capture_factory is not None else _open_video_capture
        )
        self._cond = threading.Condition()
        # Guarded by _cond: the buffer, the connection state and the counters below.
        self._buffer: collections.deque[base.Frame] = collections.deque(maxlen=buffer_size)
        self._connected = False
        self._error: BaseException | None = None
        self._frames_captured = 0
        self._frames_dropped = 0
        self._errors = 0
        self._latest: base.Frame | None = None
        self._capture: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._actual: base.CameraConfig | None = None

    @property
    def device(self) -> int | str:
        """The device index or path."""
        return self._device

    @property
    def connected(self) -> bool:
        """True while the camera is open and its reads succeed."""
        with self._cond:
            return self._connected

    @property
    def error(self) -> BaseException | None:
        """The exception that stopped the reader thread, if any."""
        with self._cond:
            return self._error

    @property
    def errors(self) -> int:
        """Exceptions raised in the reader thread since construction."""
        with self._cond:
            return self._errors

    @property
    def frames_captured(self) -> int:
        """Frames read from the camera since it was opened."""
        with self._cond:
            return self._frames_captured

    @property
    def frames_dropped(self) -> int:
        """Frames discarded because the consumer did not take them before newer ones came."""
        with self._cond:
            return self._frames_dropped

    @property
    def actual_config(self) -> base.CameraConfig | None:
        """Rate and size the backend reports after opening (None before the first open)."""
        return self._actual

    def wait_until_disconnected(self, timeout_s: float | None = None) -> bool:
        """Block until the reader stops (disconnect, end of file or close); return True if so."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._connected, timeout_s)

    def latest_frame(self) -> base.Frame | None:
        """Return the newest frame captured (for previews) without consuming it."""
        with self._cond:
            return self._latest

    def _open(self) -> None:
        capture = self._factory(self._device, self._api)
        if capture is None or not capture.isOpened():
            if capture is not None:
                capture.release()
            raise base.FrameUnavailableError(f"cannot open camera {self._device!r}")
        if self._fourcc is not None and not capture.set(
            cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self._fourcc)
        ):
            logger.debug("camera %r: fourcc %s not accepted", self._device, self._fourcc)
        for prop, value in (
            (cv2.CAP_PROP_FRAME_WIDTH, self._config.width),
            (cv2.CAP_PROP_FRAME_HEIGHT, self._config.height),
            (cv2.CAP_PROP_FPS, self._config.fps),
        ):
            if not capture.set(prop, float(value)):
                logger.debug("camera %r: property %s=%s not accepted", self._device, prop, value)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        try:
            self._actual = base.CameraConfig(fps if fps > 0 else self._config.fps, width, height)
        except ValueError:
            self._actual = None
        self._capture = capture
        self._stop.clear()
        with self._cond:
            self._buffer.clear()
            self._connected = True
            self._error = None
            self._frames_captured = 0
            self._frames_dropped = 0
            self._latest = None
        self._thread = threading.Thread(
            target=self._reader_loop, name=f"usb-camera-{self._device}", daemon=True
        )
        self._thread.start()

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                logger.warning("camera %r: reader thread did not stop in 5 s", self._device)
            self._thread = None
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        with self._cond:
            self._connected = False
            self._cond.notify_all()

    def _reader_loop(self) -> None:
        failures = 0
        capture = self._capture
        try:
            while not self._stop.is_set():
                ok, image = capture.read()
                timestamp = self._clock.now()
                if not ok or image is None:
                    failures += 1
                    if failures >= self._max_failures:
                        logger.warning(
                            "camera %r: %d failed reads, disconnected", self._device, failures
                        )
                        break
                    continue
                failures = 0
                frame = (self._to_rgb(image), timestamp)
                with self._cond:
                    if len(self._buffer) == self._buffer.maxlen:
                        self._frames_dropped += 1
                    self._buffer.append(frame)
                    self._latest = frame
                    self._frames_captured += 1
                    self._cond.notify_all()
        except Exception as exc:
            logger.exception("camera %r: reader thread failed", self._device)
            with self._cond:
                self._error = exc
                self._errors += 1
        finally:
            with self._cond:
                self._connected = False
                self._cond.notify_all()

    @staticmethod
    def _to_rgb(image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def _read_frame(self, timeout_s: float | None) -> base.Frame:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while True:
                if self._buffer:
                    return self._buffer.popleft()
                if not self._connected:
                    raise base.FrameUnavailableError(
                        f"camera {self._device!r} is disconnected"
                    ) from self._error
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise base.FrameUnavailableError(
                        f"no frame from camera {self._device!r} within {timeout_s} s"
                    )
                self._cond.wait(remaining)
