"""Published 0.1.2 import path ``omgrab.cameras.queue_reader_camera``: a compatibility module.

``QueueReaderCamera(config, frame_queue)`` keeps the published argument order and behaviour:
frames can be read without opening the camera first, frames whose size differs from the
config are resized with ``cv2.resize``, and an empty queue raises ``FrameUnavailableError``
("Queue empty ...") chained to ``queue.Empty``. It is a subclass of this package's
:class:`omgrab.cameras.queue_reader.QueueReaderCamera` (``frame_queue, config`` order), so it
plugs into everything that takes a camera. See ``docs/compat.md``.
"""

from __future__ import annotations

import queue

import cv2

from omgrab.cameras import base, queue_reader


class QueueReaderCamera(queue_reader.QueueReaderCamera):
    """Reads ``(frame, timestamp)`` tuples from a queue (published 0.1.2 signature).

    Args:
        config: Frame rate and size; frames of another size are resized to it.
        frame_queue: The queue a producer puts ``(frame, timestamp)`` tuples on.
    """

    def __init__(self, config: base.CameraConfig, frame_queue: queue.Queue[base.Frame]) -> None:
        super().__init__(frame_queue, config)
        self._enforce_frame_timing = False

    def get_next_frame(self, timeout_s: float | None = None) -> base.Frame:
        """Return the next ``(frame, timestamp)``, resized to the config when needed.

        Args:
            timeout_s: Seconds to wait at most; None waits indefinitely.

        Raises:
            FrameUnavailableError: When the queue stays empty for ``timeout_s``.
        """
        try:
            frame, timestamp = self.queue.get(timeout=timeout_s)
        except queue.Empty as exc:
            raise base.FrameUnavailableError(f"Queue empty after {timeout_s}s timeout.") from exc
        width, height = self.config.width, self.config.height
        if frame.shape[0] != height or frame.shape[1] != width:
            frame = cv2.resize(frame, (width, height))
        return frame, timestamp
