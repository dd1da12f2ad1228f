"""The camera contract every frame source implements.

Two ways to write a camera are supported. This package's cameras implement ``_open``,
``_close`` and ``_read_frame`` and get idempotent, thread-safe ``open``/``close`` and pacing for
free. Cameras written for the published omgrab 0.1.2 API override ``setup``, ``close`` and
``get_next_frame`` directly (and may call ``_maybe_wait_remainder_of_frame`` for pacing); they
instantiate and work unchanged (``docs/compat.md``).
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from typing import Generic, TypeVar

import numpy as np

from omgrab import clock as clock_mod
from omgrab import lifecycle


class FrameUnavailableError(RuntimeError):
    """No frame arrived within the timeout, or the camera is closed or disconnected."""


@dataclasses.dataclass(frozen=True)
class CameraConfig:
    """Nominal frame rate and size of a camera.

    Attributes:
        fps: Frames per second (> 0).
        width: Frame width in pixels (> 0).
        height: Frame height in pixels (> 0).
    """

    fps: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"CameraConfig.fps must be > 0, got {self.fps!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"CameraConfig.{name} must be a positive int, got {value!r}")


Frame = tuple[np.ndarray, datetime.datetime]
"""A ``(image, timestamp)`` pair as returned by ``get_next_frame``."""

FrameArray = np.ndarray
"""An image array; published 0.1.2 calls this ``omgrab.cameras.Frame``."""
FrameT = TypeVar("FrameT", bound=np.ndarray)
RGBFrame = np.ndarray[tuple[int, int, int], np.dtype[np.uint8]]
DepthFrame = np.ndarray[tuple[int, int], np.dtype[np.uint16]]


class Camera(lifecycle.Openable, Generic[FrameT]):
    """A source of timestamped frames; a context manager that opens and closes it.

    Subclasses implement ``_open``, ``_close`` and ``_read_frame``. With ``pace=True``
    ``get_next_frame`` never returns frames faster than ``config.fps`` (useful for sources that
    can produce frames instantly, such as synthetic cameras or file replay).

    A subclass written for omgrab 0.1.2 instead overrides ``get_next_frame``, ``setup`` and
    ``close``; entering the context then calls its ``setup`` and leaving it its ``close``.

    Args:
        config: Frame rate and size.
        enforce_frame_timing: Published 0.1.2 parameter: whether
            ``_maybe_wait_remainder_of_frame`` (called by 0.1.2-style subclasses) sleeps out
            the rest of the frame period. It does not affect ``pace``.
        clock: Device clock used for timestamps; the process-wide clock by default.
        pace: Hold frames back to the configured rate.

    Raises:
        TypeError: When a subclass implements neither ``_read_frame`` nor ``get_next_frame``.
    """

    def __init__(
        self,
        config: CameraConfig,
        enforce_frame_timing: bool = True,
        *,
        clock: clock_mod.DeviceClock | None = None,
        pace: bool = False,
    ) -> None:
        super().__init__()
        cls = type(self)
        if cls._read_frame is Camera._read_frame and cls.get_next_frame is Camera.get_next_frame:
            raise TypeError(f"{cls.__name__} must implement _read_frame or get_next_frame")
        self._config = config
        self._clock = clock if clock is not None else clock_mod.default_clock()
        self._pace = pace
        self._next_due: float | None = None
        self._enforce_frame_timing = enforce_frame_timing
        self._frametime_s = 1.0 / config.fps
        self._last_frame_arrival_time_s = time.monotonic()

    @property
    def config(self) -> CameraConfig:
        """The camera's configuration."""
        return self._config

    @property
    def clock(self) -> clock_mod.DeviceClock:
        """The clock that stamps this camera's frames."""
        return self._clock

    def open(self) -> None:
        """Open the camera (idempotent); pacing restarts from the first frame."""
        self._next_due = None
        super().open()

    def get_next_frame(self, timeout_s: float | None = None) -> Frame:
        """Return the next frame and its capture timestamp.

        Args:
            timeout_s: Seconds to wait at most; None waits indefinitely.

        Returns:
            ``(frame, timestamp)``: an ``HxWx3`` uint8 RGB or ``HxW`` uint16 depth array and a
            tz-aware UTC datetime from the device clock.

        Raises:
            FrameUnavailableError: When no frame arrives in time or the camera is not open.
        """
        if not self._is_open:
            raise FrameUnavailableError(f"{type(self).__name__} is not open")
        if self._pace:
            self._wait_for_slot(timeout_s)
        return self._read_frame(timeout_s)

    def _wait_for_slot(self, timeout_s: float | None) -> None:
        source = self._clock.source
        period = 1.0 / self._config.fps
        now = source.monotonic()
        # A local copy: an ``open()`` on another thread (a device reconnecting) may reset it.
        due = self._next_due
        if due is None or now - due > period:
            # First frame, or we fell more than a period behind: restart the schedule.
            due = now
        wait = due - now
        if timeout_s is not None and wait > timeout_s:
            self._next_due = due
            self._sleep(timeout_s)
            raise FrameUnavailableError(f"next frame is due in {wait:.3f} s > timeout {timeout_s}")
        if wait > 0:
            self._sleep(wait)
        self._next_due = due + period

    def _sleep(self, seconds: float) -> None:
        """Sleep for pacing on the camera's clock (a manual clock advances at once)."""
        self._clock.sleep(seconds)

    def _read_frame(self, timeout_s: float | None) -> Frame:
        """Return the next frame; raise FrameUnavailableError when none arrives in time."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _read_frame")

    def _open(self) -> None:
        """Acquire the source; runs a 0.1.2-style subclass's ``setup`` override."""
        if type(self).setup is not Camera.setup:
            self.setup()

    def _close(self) -> None:
        """Release the source; this package's cameras override it."""

    def setup(self) -> None:
        """Open the camera (the published 0.1.2 name for ``open``)."""
        self.open()

    def _maybe_wait_remainder_of_frame(self) -> None:
        """Sleep out the rest of the frame period (0.1.2 pacing hook for subclasses).

        Does nothing when the camera was built with ``enforce_frame_timing=False``. Uses
        ``time.monotonic`` so wall-clock jumps do not disturb pacing.
        """
        if not self._enforce_frame_timing:
            return
        remaining = self._frametime_s - (time.monotonic() - self._last_frame_arrival_time_s)
        if remaining > 0:
            time.sleep(remaining)
        self._last_frame_arrival_time_s = time.monotonic()
