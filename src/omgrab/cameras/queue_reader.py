"""A camera that hands out frames someone else puts on a queue."""

from __future__ import annotations

import queue
import time

from omgrab import clock as clock_mod
from omgrab.cameras import base

_POLL_S = 0.1


class QueueReaderCamera(base.Camera):
    """Reads ``(frame, timestamp)`` tuples from a ``queue.Queue`` filled by another thread.

    Useful when frames come from a callback API (e.g. a vendor SDK) or from the application
    itself. Frames and timestamps are passed through unchanged.

    Args:
        frame_queue: The queue the producer puts ``(frame, timestamp)`` tuples on.
        config: Nominal frame rate and size of the frames on the queue.
        clock: Device clock (used only for pacing); the process-wide clock by default.
        pace: Hold frames back to ``config.fps``; normally False, the producer sets the pace.
    """

    def __init__(
        self,
        frame_queue: queue.Queue[base.Frame],
        config: base.CameraConfig,
        *,
        clock: clock_mod.DeviceClock | None = None,
        pace: bool = False,
    ) -> None:
        super().__init__(config, clock=clock, pace=pace)
        self._queue = frame_queue

    @property
    def queue(self) -> queue.Queue[base.Frame]:
        """The queue frames are read from."""
        return self._queue

    def flush_queue(self) -> int:
        """Discard every frame waiting on the queue.

        Returns:
            How many frames were discarded.
        """
        discarded = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return discarded
            discarded += 1

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _read_frame(self, timeout_s: float | None) -> base.Frame:
        # Wait in short slices so that close() from another thread ends a blocked read.
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if not self._is_open:
                raise base.FrameUnavailableError("QueueReaderCamera was closed")
            wait = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=max(wait, 0.0))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise base.FrameUnavailableError(
                        f"no frame on the queue within {timeout_s} s"
                    ) from None
                continue
            return item
