"""A sensor that hands out items someone else puts on a queue."""

from __future__ import annotations

import queue

from omgrab import clock as clock_mod
from omgrab import queue_wait
from omgrab.sensors import base


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
        return queue_wait.drain(self._queue)

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _read_item(self, timeout_s: float | None) -> base.Item:
        try:
            return queue_wait.get(self._queue, timeout_s, lambda: self._is_open)
        except queue_wait.Closed:
            raise base.SensorDataUnavailableError("QueueReaderSensor was closed") from None
        except queue_wait.TimedOut:
            raise base.SensorDataUnavailableError(
                f"no item on the queue within {timeout_s} s"
            ) from None
