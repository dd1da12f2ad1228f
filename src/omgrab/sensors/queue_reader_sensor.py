"""Published 0.1.2 import path ``omgrab.sensors.queue_reader_sensor``: a compatibility module.

``QueueReaderSensor(data_queue)`` keeps the published behaviour: items can be read without
opening the sensor first and an empty queue raises ``SensorDataUnavailableError``
("Queue empty ...") chained to ``queue.Empty``. It subclasses this package's
:class:`omgrab.sensors.queue_reader.QueueReaderSensor`. See ``docs/compat.md``.
"""

from __future__ import annotations

import queue

from omgrab.sensors import base, queue_reader


class QueueReaderSensor(queue_reader.QueueReaderSensor):
    """Reads ``(bytes, timestamp)`` tuples from a queue (published 0.1.2 behaviour).

    Args:
        data_queue: The queue a producer puts ``(payload, timestamp)`` tuples on.
    """

    def __init__(self, data_queue: queue.Queue[base.Item]) -> None:
        super().__init__(data_queue)

    def get_next_item(self, timeout_s: float | None = None) -> base.Item:
        """Return the next ``(payload, timestamp)``.

        Args:
            timeout_s: Seconds to wait at most; None waits indefinitely.

        Raises:
            SensorDataUnavailableError: When the queue stays empty for ``timeout_s``.
        """
        try:
            return self.queue.get(timeout=timeout_s)
        except queue.Empty as exc:
            raise base.SensorDataUnavailableError(
                f"Queue empty after {timeout_s}s timeout."
            ) from exc
