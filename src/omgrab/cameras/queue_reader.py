"""A camera that hands out frames someone else puts on a queue."""

from __future__ import annotations

import queue

from omgrab import clock as clock_mod
from omgrab import queue_wait
from omgrab.cameras import base


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
        return queue_wait.drain(self._queue)

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _read_frame(self, timeout_s: float | None) -> base.Frame:
        try:
            return queue_wait.get(self._queue, timeout_s, lambda: self._is_open)
        except queue_wait.Closed:
            raise base.FrameUnavailableError("QueueReaderCamera was closed") from None
        except queue_wait.TimedOut:
            raise base.FrameUnavailableError(
                f"no frame on the queue within {timeout_s} s"
            ) from None
