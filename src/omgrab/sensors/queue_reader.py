"""A sensor that hands out items someone else puts on a queue."""

from __future__ import annotations

import queue
import time

from omgrab import clock as clock_mod
from omgrab.sensors import base

_POLL_S = 0.1


class QueueReaderSensor(base.Sensor):
    """Reads ``(bytes, timestamp)`` tuples from a ``queue.Queue`` filled by another thread.

    Args:
        item_queue: The queue the producer puts ``(payload, timestamp)`` tuples on.
        clock: Device clock; the process-wide clock by default.
    """

    def __init__(
        self,
        item_queue: queue.Queue[base.Item],
        *,
        clock: clock_mod.DeviceClock | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self._queue = item_queue

    @property
    def queue(self) -> queue.Queue[base.Item]:
        """The queue items are read from."""
        return self._queue

    def flush_queue(self) -> int:
        """Discard every item waiting on the queue and return how many were discarded."""
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

    def _read_item(self, timeout_s: float | None) -> base.Item:
        # Wait in short slices so that close() from another thread ends a blocked read.
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if not self._is_open:
                raise base.SensorDataUnavailableError("QueueReaderSensor was closed")
            wait = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            try:
                return self._queue.get(timeout=max(wait, 0.0))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise base.SensorDataUnavailableError(
                        f"no item on the queue within {timeout_s} s"
                    ) from None
