"""Published 0.1.2 import path ``omgrab.cameras.oakd_camera``: a thin compatibility module.

``OakDRGBCamera(config, frame_queue)`` and ``OakDDepthCamera(config, frame_queue)`` read
``(frame, timestamp)`` tuples that an OAK-D pipeline puts on a queue; they are the 0.1.2
queue-reading camera (:mod:`omgrab.cameras.queue_reader_camera`) under their published names.
This package's OAK-D device (:class:`omgrab.devices.OakDCaptureDevice`) builds its own cameras;
these classes serve code that feeds queues itself. See ``docs/compat.md``.
"""

from __future__ import annotations

import datetime
import queue

from omgrab.cameras import base, queue_reader_camera

TimestampedRGBFrame = tuple[base.RGBFrame, datetime.datetime]
TimestampedDepthFrame = tuple[base.DepthFrame, datetime.datetime]
TimestampedIMUData = tuple[bytes, datetime.datetime]


class OakDRGBCamera(queue_reader_camera.QueueReaderCamera):
    """RGB frames (height x width x 3, uint8) read from an OAK-D frame queue."""

    def __init__(
        self, config: base.CameraConfig, frame_queue: queue.Queue[TimestampedRGBFrame]
    ) -> None:
        super().__init__(config, frame_queue)


class OakDDepthCamera(queue_reader_camera.QueueReaderCamera):
    """Depth frames (height x width, uint16 millimetres) read from an OAK-D frame queue."""

    def __init__(
        self, config: base.CameraConfig, frame_queue: queue.Queue[TimestampedDepthFrame]
    ) -> None:
        super().__init__(config, frame_queue)
